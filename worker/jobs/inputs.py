"""A task's input images as its provider takes them, each with its role.

An input we stored (an inline image or an upload's copy) is read from storage and handed
over as bytes. An https URL the caller gave passes on as a URL -- unless the provider
takes only bytes (`Provider.inline_images`, the Gemini API): then it is fetched here,
through the egress policy that guards every request made on a tenant's behalf
(`core.egress`: public addresses only, each redirect checked, bounded in time and size),
and must be an image by its bytes.
"""

from __future__ import annotations

import structlog

from core import egress
from core.images import MAX_IMAGE_BYTES, sniff_image
from core.storage import StorageError
from core.storage.keys import stored_key
from schemas.catalogue import ImageRole, ModelSpec
from worker.context import WorkerContext
from worker.upstream import ImageInput, InlineImage, RemoteImage
from worker.upstream.registry import Provider

log = structlog.get_logger(__name__)


class InputMissing(Exception):
    """An input can never be read (gone from storage, a refused or failing URL, not an
    image): the task fails ``input_unavailable``. The text is safe to show the caller."""


class InputLater(Exception):
    """An input's host name could not be resolved just now: try the submit again later."""


async def task_images(
    context: WorkerContext,
    refs: list[str],
    spec: ModelSpec | None,
    provider: Provider,
    *,
    task_id: str,
    roles: list[str] | None = None,
) -> list[ImageInput]:
    """Each of `refs` (the task's ``input_refs``, in order) with its role: the one the
    request chose (`roles`, checked against the model at create), else by position from
    the catalogue entry (`spec` None: the model left the catalogue, every image a
    reference). Raises InputMissing or InputLater."""
    chosen = [ImageRole(role) for role in roles or [] if role in ImageRole._value2member_map_]
    images: list[ImageInput] = []
    for position, ref in enumerate(refs):
        if len(chosen) == len(refs):
            role = chosen[position]
        else:
            role = spec.role_at(position) if spec is not None else ImageRole.REFERENCE
        key = stored_key(ref)
        if key is not None:
            images.append(await _stored(context, role, ref, key))
        elif provider.inline_images:
            images.append(await _fetched(context, role, ref, position, task_id))
        else:
            images.append(RemoteImage(role, ref))
    return images


async def _stored(context: WorkerContext, role: ImageRole, ref: str, key: str) -> InlineImage:
    try:
        stream = await context.storage.open_stream(key)
        data = b"".join([chunk async for chunk in stream])
    except StorageError as exc:
        raise InputMissing(f"stored input {ref} cannot be read: {exc}") from exc
    return InlineImage(role, sniff_image(data) or "image/png", data)


async def _fetched(
    context: WorkerContext, role: ImageRole, url: str, position: int, task_id: str
) -> InlineImage:
    settings = context.settings
    try:
        fetched = await egress.fetch(
            context.images,
            url,
            policy=egress.Policy.from_settings(settings),
            max_bytes=MAX_IMAGE_BYTES,
            max_seconds=settings.image_fetch_timeout_seconds,
        )
    except egress.UnsafeTarget as exc:
        log.warning("input_refused", task_id=task_id, position=position, reason=exc.reason)
        raise InputMissing(f"images[{position}]: {exc}") from None
    except egress.LookupUnavailable as exc:
        raise InputLater(f"images[{position}]: {exc}") from None
    except egress.EgressError as exc:
        raise InputMissing(f"images[{position}] could not be fetched: {exc}") from None
    mime = sniff_image(fetched.data)
    if mime is None:
        raise InputMissing(f"images[{position}] is not a PNG, JPEG or WebP image.")
    return InlineImage(role, mime, fetched.data)
