"""The configuration page: the runtime config as a form, validated by the models the API
validates ``PUT /v1/admin/config`` with (errors next to their fields); the upstream keys
write-only (shown masked; an empty input leaves them as they are); the model catalogue's
prices; and the connection test of ``POST /v1/admin/config/test``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.secrets import MASK, UnreadableSecretError, mask
from schemas.config import ConfigTestOut, RuntimeConfig, RuntimeConfigPatch, UpstreamCandidate
from service.console import render, session
from service.console.forms import integer, posted
from service.context import ctx
from service.errors import ProblemError
from service.routes.admin import check_upstream

# Edited elsewhere on the page (keys, providers, the catalogue) or not a scalar.
_SPECIAL = {"upstream_api_key", "providers", "models"}


@dataclass(frozen=True)
class Field:
    """One scalar form field: ``kind`` is bool, choice, int or text."""

    name: str
    kind: str
    value: str
    choices: tuple[str, ...] = ()


def _fields(config: RuntimeConfig, given: dict[str, str] | None = None) -> list[Field]:
    shown = []
    for name, info in RuntimeConfig.model_fields.items():
        if name in _SPECIAL:
            continue
        current = getattr(config, name)
        value = (given or {}).get(name, _text(current))
        annotation = info.annotation
        if annotation is bool:
            shown.append(Field(name, "bool", value, ("true", "false")))
        elif get_origin(annotation) is Literal:
            shown.append(Field(name, "choice", value, tuple(str(a) for a in get_args(annotation))))
        elif isinstance(current, int):
            shown.append(Field(name, "int", value))
        else:
            shown.append(Field(name, "text", value))
    return shown


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _typed(kind: str, raw: str) -> Any:
    """A form string as the strict patch model wants it (anything else stays a string,
    which the model refuses with its own message)."""
    if kind == "bool" and raw in ("true", "false"):
        return raw == "true"
    if kind == "int":
        return integer(raw)
    return raw


def _shown_key(request: Request, stored: str) -> str:
    try:
        plain = ctx(request).config.box.decrypt(stored)
    except UnreadableSecretError:
        return MASK + " (unreadable under this SECRET_KEY)"
    return mask(plain) or "(not set)"


async def show(request: Request) -> Response:
    await session.admin(request)
    return await _page(request)


async def _page(
    request: Request,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    given: dict[str, str] | None = None,
    test: ConfigTestOut | None = None,
) -> Response:
    config = await ctx(request).config.get()
    providers = [
        {"kind": kind, "base_url": access.base_url, "key": _shown_key(request, access.api_key)}
        for kind, access in sorted(config.providers.items())
    ]
    return render.page(
        request,
        "config.html",
        status=status,
        fields=_fields(config, given),
        upstream_key=_shown_key(request, config.upstream_api_key),
        providers=providers,
        models=config.models,
        given=given or {},
        errors=errors or {},
        test=test,
        notice="Saved." if request.query_params.get("done") else "",
    )


def _changes(config: RuntimeConfig, fields: dict[str, str]) -> dict[str, Any]:
    """The patch the form asks for: the fields whose value differs from the stored one,
    a key only when one was typed, the catalogue only when a price changed."""
    changes: dict[str, Any] = {}
    for field in _fields(config):
        raw = fields.get(field.name)
        if raw is not None and raw != field.value:
            changes[field.name] = _typed(field.kind, raw)
    if fields.get("upstream_api_key"):
        changes["upstream_api_key"] = fields["upstream_api_key"]
    access: dict[str, dict[str, Any]] = {}
    for kind, stored in config.providers.items():
        base_url = fields.get(f"providers.{kind}.base_url")
        if base_url is not None and base_url != stored.base_url:
            access.setdefault(kind, {})["base_url"] = base_url
        if key := fields.get(f"providers.{kind}.api_key"):
            access.setdefault(kind, {})["api_key"] = key
    if access:
        changes["providers"] = access
    models = []
    repriced = False
    for spec in config.models:
        raw = fields.get(f"price.{spec.id}")
        entry = spec.model_dump()
        if raw is not None and raw != str(spec.price):
            entry["price"] = _typed("int", raw)
            repriced = True
        models.append(entry)
    if repriced:
        changes["models"] = models
    return changes


def _errors(exc: ValidationError, config: RuntimeConfig) -> dict[str, str]:
    """Field name (as the form names it) → message; ``_form`` for the document's own."""
    found: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"]]
        if len(loc) >= 3 and loc[0] == "models" and loc[1].isdigit():
            index = int(loc[1])
            name = f"price.{config.models[index].id}" if index < len(config.models) else "_form"
        elif loc and loc[0] == "providers":
            name = ".".join(loc[:3])
        else:
            name = loc[0] if loc else "_form"
        found.setdefault(name, error["msg"])
    return found


async def save(request: Request) -> Response:
    _, fields = await posted(request)
    store = ctx(request).config
    config = await store.get()
    try:
        patch = RuntimeConfigPatch.model_validate(_changes(config, fields))
        await store.update(patch)
    except ValidationError as exc:
        return await _page(request, status=400, errors=_errors(exc, config), given=fields)
    return RedirectResponse("/console/config?done=1", status_code=303)


async def test(request: Request) -> Response:
    """The connection test of the stored upstream, or of what the test form names (an
    empty field: the stored value, under the API's rules)."""
    _, fields = await posted(request)
    given = {
        name: fields[name]
        for name in ("upstream_kind", "upstream_base_url", "upstream_api_key")
        if fields.get(name)
    }
    try:
        candidate = UpstreamCandidate.model_validate(given)
    except ValidationError as exc:
        config = await ctx(request).config.get()
        return await _page(request, status=400, errors=_errors(exc, config))
    try:
        report = await check_upstream(ctx(request), candidate)
    except ProblemError as exc:
        return await _page(request, status=exc.status, errors={"_test": exc.detail})
    return await _page(request, test=report)
