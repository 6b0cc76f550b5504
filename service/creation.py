"""Creating a video: validate against the runtime config, hold credits, write the task,
enqueue the submit job after commit (docs/architecture.md, "Ledger" and "Queue")."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from core import queue
from core.apikeys import Principal
from core.ids import new_id
from core.images import MIME_EXT, ImageError, decode_data_uri
from core.metrics import CREDITS, TASKS_CREATED
from core.presenter import video_of
from core.repo import creation, credits, tasks
from core.storage import StorageError
from core.storage.keys import input_key, stored_key, stored_ref
from core.uploads import read as read_upload
from schemas.api import VideoCreate
from schemas.catalogue import REFERENCE_IMAGES, ImageRole, ModelSpec
from schemas.clock import utcnow
from schemas.config import RuntimeConfig
from schemas.problems import Code
from schemas.status import TaskStatus, TaskType
from service import idempotency, ratelimit
from service.auth import UncountedRequest, client_over
from service.context import Context
from service.errors import ProblemError
from service.ratelimit import rate_limited
from service.webhook_targets import require_allowed

log = structlog.get_logger(__name__)

# Inputs larger than this are decoded and hashed in a thread, off the event loop.
OFF_LOOP_BYTES = 256 * 1024


@dataclass(frozen=True)
class InputImage:
    """An image given inline (data URI or upload): stored by us, passed on as a data URI."""

    mime: str
    data: bytes


@dataclass(frozen=True)
class UploadRef:
    """An ``upload_…`` id given as an image: read (and copied into the video's inputs)
    once the request is otherwise valid and is not an idempotent replay."""

    upload_id: str
    position: int


UPLOAD_PREFIX = "upload_"


def resolve_model(config: RuntimeConfig, req: VideoCreate, image_count: int) -> ModelSpec:
    model_id = req.model or (
        config.default_image_model if image_count else config.default_text_model
    )
    spec = config.model(model_id)
    if spec is None:
        valid = ", ".join(m.id for m in config.models)
        raise ProblemError(
            Code.UNKNOWN_MODEL,
            f"Unknown model '{model_id}'. Valid models: {valid}.",
            valid=[m.id for m in config.models],
        )
    if image_count and not spec.image_to_video:
        image_models = ", ".join(m.id for m in config.models if m.image_to_video)
        raise ProblemError(
            Code.IMAGES_NOT_SUPPORTED,
            f"{spec.id} is text-to-video only and accepts no images; image models: {image_models}.",
        )
    if image_count > spec.most_images or (
        req.image_roles is None and image_count > spec.max_images
    ):
        raise ProblemError(
            Code.TOO_MANY_IMAGES,
            f"{spec.id} accepts at most {spec.max_images} images ({spec.roles_text()})"
            + (
                f", or up to {spec.reference_images} with image_roles reference."
                if spec.reference_images
                else "."
            ),
            max_images=spec.max_images,
        )
    if not image_count and not spec.text_to_video:
        raise ProblemError(Code.IMAGES_NOT_SUPPORTED, f"{spec.id} needs at least one image.")
    return spec


def image_roles(spec: ModelSpec, req: VideoCreate, image_count: int) -> list[ImageRole]:
    """The role of each image: the request's ``image_roles`` where the model takes them
    that way, else the model's positional roles. A list of another length than the images
    is a 400 ``validation_error``; roles the model cannot honour a 400
    ``unsupported_parameter`` naming the model and the ways it takes images."""
    requested = None if req.image_roles is None else [ImageRole(r) for r in req.image_roles]
    if requested is not None and len(requested) != image_count:
        raise ProblemError(
            Code.VALIDATION_ERROR,
            f"image_roles names {len(requested)} roles for {image_count} images.",
            errors=[{"field": "image_roles", "message": "one role per image, in order"}],
        )
    roles = spec.roles_for(image_count, requested or None)
    if roles is None:
        given = ", ".join(role.value for role in requested or [])
        raise ProblemError(
            Code.UNSUPPORTED_PARAMETER,
            f"{spec.id} cannot honour image_roles [{given}]: it takes {spec.role_choices()}.",
            model=spec.id,
            parameter="image_roles",
            accepted=[spec.role_choices()],
        )
    return roles


@dataclass(frozen=True)
class Shape:
    """What the video will be: ``aspect_ratio`` and ``resolution`` None where the caller
    left them to the model; ``seconds`` the requested or the model's fixed length."""

    aspect_ratio: str | None
    resolution: str | None
    seconds: int | None


def honoured_shape(spec: ModelSpec, req: VideoCreate, roles: list[ImageRole]) -> Shape:
    """The ``size``, ``aspect_ratio`` and ``seconds`` of the request, each checked against
    what the model can make (its catalogue entry), and ``negative_prompt``,
    ``person_generation``, ``seed`` and ``enhance_prompt`` against what it honours;
    anything it cannot honour is a 400 ``unsupported_parameter`` problem naming the model
    and the values it accepts. A length left out is the model's longest."""
    _check_options(spec, req)
    ratio: str | None = None
    resolution: str | None = None
    if req.size is not None:
        if (shape := spec.shape_of(req.size)) is None:
            raise _unsupported(spec, "size", req.size, spec.sizes)
        ratio, resolution = shape
    if req.aspect_ratio is not None:
        if req.aspect_ratio not in spec.aspect_ratios:
            raise _unsupported(spec, "aspect_ratio", req.aspect_ratio, spec.aspect_ratios)
        if ratio is not None and ratio != req.aspect_ratio:
            raise ProblemError(
                Code.UNSUPPORTED_PARAMETER,
                f"size {req.size} is {ratio}, which contradicts aspect_ratio {req.aspect_ratio}.",
                model=spec.id,
                parameter="aspect_ratio",
                accepted=[ratio],
            )
        ratio = req.aspect_ratio
    seconds = int(req.seconds) if req.seconds is not None else None
    if seconds is not None and seconds not in spec.durations:
        raise _unsupported(spec, "seconds", req.seconds, [str(d) for d in spec.durations])
    seconds = seconds or spec.default_seconds
    longest = spec.default_seconds
    asked = [resolution] if resolution is not None else []
    if spec.reference_images > 0 and ImageRole.REFERENCE in roles:
        asked.append(REFERENCE_IMAGES)
    needs_longest = [what for what in asked if what in spec.longest_seconds_only]
    if needs_longest and seconds != longest:
        raise ProblemError(
            Code.UNSUPPORTED_PARAMETER,
            f"{spec.id} makes {' and '.join(needs_longest)} only at {longest} seconds"
            f" (seconds {seconds} asked).",
            model=spec.id,
            parameter="seconds",
            accepted=[str(longest)],
        )
    return Shape(ratio, resolution, seconds)


def _check_options(spec: ModelSpec, req: VideoCreate) -> None:
    """``negative_prompt``, ``person_generation``, ``seed`` and ``enhance_prompt: true``
    only where the model honours them (``GET /v1/models`` lists its ``parameters``)."""
    if req.negative_prompt is not None and not spec.negative_prompt:
        raise _unsupported(spec, "negative_prompt", "(given)", [])
    if req.person_generation is not None and req.person_generation not in spec.person_generation:
        accepted = [str(value) for value in spec.person_generation]
        raise _unsupported(spec, "person_generation", req.person_generation, accepted)
    if req.seed is not None and not spec.seed:
        raise _unsupported(spec, "seed", req.seed, [])
    if req.enhance_prompt and not spec.enhance_prompt:
        raise _unsupported(spec, "enhance_prompt", "true", ["false"])


def _unsupported(spec: ModelSpec, name: str, value: object, accepted: list[str]) -> ProblemError:
    choices = (
        f"it accepts {', '.join(accepted)}"
        if accepted
        else f"it cannot be chosen for this model (omit {name})"
    )
    return ProblemError(
        Code.UNSUPPORTED_PARAMETER,
        f"{spec.id} cannot honour {name} {value}: {choices}.",
        model=spec.id,
        parameter=name,
        accepted=accepted,
    )


def split_images(refs: list[str]) -> tuple[list[str | InputImage | UploadRef], int]:
    """Each reference as a URL to pass on, decoded inline bytes or an upload to read;
    checks every one."""
    out: list[str | InputImage | UploadRef] = []
    for position, ref in enumerate(refs):
        if ref.startswith(UPLOAD_PREFIX):
            out.append(UploadRef(ref, position))
            continue
        if ref.startswith("data:"):
            try:
                mime, data = decode_data_uri(ref, position=position)
            except ImageError as exc:
                code = Code.IMAGE_TOO_LARGE if exc.too_large else Code.INVALID_IMAGE
                raise ProblemError(code, str(exc)) from None
            out.append(InputImage(mime, data))
            continue
        parts = urlsplit(ref)
        if parts.scheme != "https" or not parts.hostname or len(ref) > 2000:
            raise ProblemError(
                Code.INVALID_IMAGE,
                f"images[{position}] must be an https:// URL"
                ", a data:image/(png|jpeg|webp);base64 URI or an upload id.",
            )
        out.append(ref)
    return out, len(out)


async def create_video(
    context: Context,
    principal: Principal,
    req: VideoCreate,
    uploads: list[InputImage],
    idempotency_key: str | None,
    request_id: str | None = None,
    uncounted: UncountedRequest | None = None,
) -> tuple[int, dict[str, Any]]:
    config = await context.config.get()
    if not config.enabled:
        raise ProblemError(Code.SERVICE_DISABLED, "Video generation is disabled by the operator.")
    refs = [*(req.images or [])]
    if req.input_reference is not None:  # the OpenAI field: after the images, as a file is
        refs.append(req.input_reference.ref)
    given, count = await _split_images(refs)
    given.extend(uploads)
    spec = resolve_model(config, req, count + len(uploads))
    roles = image_roles(spec, req, count + len(uploads))
    shape = honoured_shape(spec, req, roles)
    user = req.user or principal.client_id
    snapshot = req.model_dump(mode="json", exclude_none=True, exclude={"images", "input_reference"})
    snapshot["image_count"] = len(given)

    claim = None
    if idempotency_key is not None:
        big = sum(len(r) for r in refs) + sum(len(u.data) for u in uploads)
        if big > OFF_LOOP_BYTES:  # hashing megabytes would stall every other request
            digest = await asyncio.to_thread(_request_digest, req, uploads)
        else:
            digest = _request_digest(req, uploads)
        claim = idempotency.Claim(
            principal.client_id, idempotency_key, digest, context.settings.idempotency_ttl_seconds
        )
        replay = await idempotency.earlier_answer(context.engine, claim)
        if replay is not None:
            return await _replayed(context, principal, replay)
    await _within_create_limit(context, principal, user, uncounted, claim)
    if req.webhook_url is not None:
        await require_allowed(context.settings, req.webhook_url, "webhook_url")
    images = await _read_uploads(context, principal, given)
    try:
        return await _create(
            context, principal, req, spec, shape, config, user, images, snapshot, claim, request_id
        )
    except idempotency.KeyTaken:
        assert claim is not None
        replay = await idempotency.earlier_answer(context.engine, claim)
        if replay is None:  # the winner's record expired in between: vanishingly rare
            raise ProblemError(
                Code.IDEMPOTENCY_IN_PROGRESS, "A request with this Idempotency-Key is in progress."
            ) from None
        return await _replayed(context, principal, replay)


async def _within_create_limit(
    context: Context,
    principal: Principal,
    user: str,
    uncounted: UncountedRequest | None,
    claim: idempotency.Claim | None,
) -> None:
    """429 past the runtime config's ``user_creates_per_minute`` (admins exempt, as from the
    client rate) or past the client's requests per minute (``uncounted``: counted first,
    in the same Redis round trip, and a create it refuses costs the user no create):
    checked before anything is held or written, so a refused create costs the user
    nothing, and after the idempotent replay, so a client retrying a create it already
    made gets its video. Retries under one ``Idempotency-Key`` (``claim``) that arrive
    before the first has answered count as one create: they go on to wait for it and
    replay its answer (``service.idempotency``)."""
    rule = ratelimit.user_creates(await context.config.get())
    hits: list[tuple[ratelimit.Rule, tuple[str, ...]]] = []
    if not principal.is_admin:
        hits.append((rule, (principal.client_id, user)))
    if uncounted is not None and uncounted.due:
        uncounted.due = False
        hits.insert(0, (uncounted.rule, (uncounted.client_id,)))
    if not hits:
        return
    once = claim.token if claim is not None and not principal.is_admin else None
    refused = await context.limits.hit_all(*hits, once=once)
    if refused is None:
        return
    position, wait = refused
    if position < len(hits) - 1:  # the client's rate, counted first
        assert uncounted is not None
        raise client_over(wait, uncounted.rule)
    raise rate_limited(wait, f"User '{user}' is over {rule.amount} creates per minute.")


async def _replayed(
    context: Context, principal: Principal, replay: idempotency.Replay
) -> tuple[int, dict[str, Any]]:
    """The first answer for the key, unless its video has since been deleted: a 404 then,
    as any read of it would answer (never a pointer to something gone)."""
    async with context.engine.connect() as conn:
        task = await tasks.visible(conn, str(replay.body.get("id")), client_id=principal.client_id)
    if task is None:
        raise ProblemError(
            Code.NOT_FOUND, "The video created with this Idempotency-Key has been deleted."
        )
    return replay.status, replay.body


def _request_digest(req: VideoCreate, uploads: list[InputImage]) -> str:
    """What an ``Idempotency-Key`` is bound to: the body and the uploaded files."""
    return idempotency.request_hash(
        {
            "body": req.model_dump(mode="json"),
            "uploads": [hashlib.sha256(u.data).hexdigest() for u in uploads],
        }
    )


async def _read_uploads(
    context: Context, principal: Principal, given: list[str | InputImage | UploadRef]
) -> list[str | InputImage]:
    """The images with each upload id replaced by a copy of its bytes: the video keeps
    its own, so the upload may expire or be deleted while the video is made. An upload
    that is not the client's, has expired or is gone is a 404 ``upload_not_found``
    (the same answer whether or not another client has that id); nothing is held."""
    images: list[str | InputImage] = []
    for image in given:
        if not isinstance(image, UploadRef):
            images.append(image)
            continue
        found = await read_upload(
            context.engine, context.storage, image.upload_id, client_id=principal.client_id
        )
        if found is None:
            raise ProblemError(
                Code.UPLOAD_NOT_FOUND,
                f"images[{image.position}]: no upload {image.upload_id} (it may have expired).",
            )
        images.append(InputImage(*found))
    return images


async def _split_images(refs: list[str]) -> tuple[list[str | InputImage | UploadRef], int]:
    # Decoding megabytes of base64 would stall every other request: off the event loop.
    if sum(len(r) for r in refs) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(split_images, refs)
    return split_images(refs)


async def _create(
    context: Context,
    principal: Principal,
    req: VideoCreate,
    spec: ModelSpec,
    shape: Shape,
    config: RuntimeConfig,
    user: str,
    images: list[str | InputImage],
    snapshot: dict[str, Any],
    claim: idempotency.Claim | None,
    request_id: str | None,
) -> tuple[int, dict[str, Any]]:
    task_id = new_id("video")
    refs, shown = await _store_inputs(context, task_id, images)
    price = spec.price
    now = utcnow()
    committing = False
    # Without a key the create is one statement on PostgreSQL (core.repo.creation),
    # atomic on its own: a plain connection, on which SQLAlchemy then sends no BEGIN
    # (nor COMMIT). SQLite runs it as three statements in a transaction.
    one_statement = claim is None and context.engine.dialect.name == "postgresql"
    try:
        async with context.engine.connect() if one_statement else context.engine.begin() as conn:
            if claim is not None:
                # First: a concurrent request with the key waits here, then replays ours.
                await idempotency.take(conn, claim)
            values = {
                "id": task_id,
                "client_id": principal.client_id,
                "user": user,
                "task_type": TaskType.IMAGE_TO_VIDEO if images else TaskType.TEXT_TO_VIDEO,
                "status": TaskStatus.QUEUED,
                "model": spec.id,
                "prompt": req.prompt,
                # A model that does not rewrite prompts ignores the operator's default.
                "enhance_prompt": spec.enhance_prompt
                and (
                    config.default_enhance_prompt
                    if req.enhance_prompt is None
                    else req.enhance_prompt
                ),
                "aspect_ratio": shape.aspect_ratio,
                "resolution": shape.resolution,
                "duration_seconds": shape.seconds,
                "seed": req.seed,
                "images": shown,
                "input_refs": refs,
                "price": price,
                "request_snapshot": snapshot,
                "upstream_response": {},
                "metadata": req.metadata or {},
                "webhook_url": req.webhook_url,
                "request_id": request_id,
                "created_at": now,
                "updated_at": now,
                # The enqueue intent: the reconciler re-enqueues anything overdue.
                "next_attempt_at": now
                + timedelta(seconds=context.settings.reconcile_grace_seconds),
            }
            task = await _create_held(conn, spec, config, values)
            body = video_of(task).model_dump(mode="json")
            if claim is not None:
                await idempotency.record(conn, claim, 200, body)
            # Past here only the commit can fail, and the database may have committed it.
            committing = True
    except BaseException:
        if not committing:  # rolled back: no row refers to the inputs
            await _forget_inputs(context, refs)
        raise
    CREDITS.labels("held").inc(price)
    TASKS_CREATED.labels(spec.id).inc()
    await queue.enqueue_after_commit(context.queue, queue.submit(task_id))
    log.info("video_created", task_id=task_id, model=spec.id, user=user, price=price)
    return 200, body


async def _create_held(
    conn: AsyncConnection, spec: ModelSpec, config: RuntimeConfig, values: dict[str, Any]
) -> tasks.Task:
    """Hold the price, count the task active and write it; a 402 ``insufficient_credits``
    if the balance is short (checked first, as it always was), else a 429
    ``too_many_concurrent_tasks`` past the per-user limit, with nothing written."""
    client_id, user, price = values["client_id"], values["user"], values["price"]
    limit = config.max_concurrent_tasks_per_user
    for _ in range(3):
        task = await creation.create_held(conn, values, max_active=limit)
        if task is not None:
            return task
        # Why it was refused, read after the fact: a settlement in between may have
        # made room, and then the create is tried again.
        have = await credits.standing_of(conn, client_id, user)
        if have.balance < price:
            raise ProblemError(
                Code.INSUFFICIENT_CREDITS,
                f"{spec.id} costs {price} credits; user '{user}' has {have.balance} available.",
                balance=have.balance,
                price=price,
            )
        if have.active_tasks >= limit:
            break
    raise ProblemError(
        Code.TOO_MANY_CONCURRENT_TASKS,
        f"User '{user}' already has {have.active_tasks} videos in progress (limit {limit}).",
        limit=limit,
    )


async def _store_inputs(
    context: Context, task_id: str, images: list[str | InputImage]
) -> tuple[list[str], list[str]]:
    """(references the worker reads, what the video object shows) for each image."""
    refs: list[str] = []
    shown: list[str] = []
    for position, image in enumerate(images):
        if isinstance(image, str):
            refs.append(image)
            shown.append(image)
            continue
        key = input_key(task_id, position, MIME_EXT[image.mime])
        await context.storage.put_bytes(key, image.data, image.mime)
        refs.append(stored_ref(key))
        shown.append(stored_ref(key))
    return refs, shown


async def _forget_inputs(context: Context, refs: list[str]) -> None:
    """Delete the inputs stored for a create that was refused. Best effort: a store error
    is logged, never raised over the refusal (a 402 must not become a 500); the objects
    are then orphans under the unused task id, which no row refers to."""
    for ref in refs:
        if (key := stored_key(ref)) is not None:
            try:
                await context.storage.delete(key)
            except StorageError as exc:
                log.warning("input_cleanup_failed", key=key, error=str(exc))
