"""/v1/admin/config: the runtime configuration (upstream key write-only), and its test."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.config_store import ConfigStore
from core.secrets import MASK, UnreadableSecretError, mask
from schemas.config import (
    ConfigOut,
    ConfigTestOut,
    ConnectionReport,
    RuntimeConfig,
    RuntimeConfigPatch,
    UpstreamCandidate,
)
from schemas.problems import Code
from service.auth import require_admin
from service.body import json_object, parse
from service.context import Context, ctx
from service.contract import Operation, Reply
from service.errors import ProblemError, from_validation

# Bounds the whole check (connect, answer): a fuzzer's or a console's unreachable host
# costs a request at most this long.
CHECK_TIMEOUT_SECONDS = 5.0


def _public(request: Request, config: RuntimeConfig) -> dict[str, Any]:
    body = config.model_dump(mode="json")
    store = ctx(request).config
    (
        body["upstream_api_key"],
        body["upstream_api_key_set"],
        body["upstream_api_key_unreadable"],
    ) = _shown(store, body["upstream_api_key"])
    for access in body["providers"].values():
        access["api_key"], access["api_key_set"], access["api_key_unreadable"] = _shown(
            store, access["api_key"]
        )
    return body


def _shown(store: ConfigStore, stored: str) -> tuple[str, bool, bool]:
    """``(masked key, set, unreadable)`` of a stored (encrypted) key: one this SECRET_KEY
    cannot decrypt is shown as set, masked, and unreadable -- never a 500."""
    try:
        plain = store.box.decrypt(stored)
    except UnreadableSecretError:
        return MASK, True, True
    return mask(plain), bool(plain), False


async def show(request: Request) -> Response:
    await require_admin(request)
    return JSONResponse(_public(request, await ctx(request).config.get()))


async def put(request: Request) -> Response:
    await require_admin(request)
    patch = parse(RuntimeConfigPatch, await json_object(request, 1024 * 1024))
    try:
        config = await ctx(request).config.update(patch)
    except ValidationError as exc:
        raise from_validation(exc) from None
    return JSONResponse(_public(request, config))


async def test_config(request: Request) -> Response:
    """Check the stored upstream, or a candidate, without creating a paid job; 200 for
    whatever the check found (`ConfigTestOut`), problem+json only for bad input."""
    await require_admin(request)
    candidate = parse(UpstreamCandidate, await json_object(request, 64 * 1024))
    answer = await check_upstream(ctx(request), candidate)
    return JSONResponse(answer.model_dump(mode="json"))


async def check_upstream(context: Context, candidate: UpstreamCandidate) -> ConfigTestOut:
    """What the connection check of ``candidate`` found (the API's test and the
    console's); a 503 problem when this process has no check, 400 for a kind nothing
    serves."""
    if context.upstream_check is None:
        raise ProblemError(Code.UNAVAILABLE, "This process was started without the upstream check.")
    kind, base_url, key = await context.config.candidate(candidate)
    if key is None:
        report = ConnectionReport(
            result="key_unreadable",
            latency_ms=0,
            detail="The stored key cannot be decrypted with this SECRET_KEY (a database "
            "restored under another one?): store the key again, or start with the SECRET_KEY "
            "it was stored under (SECRET_KEY_PREVIOUS also decrypts). Nothing was sent.",
        )
        return _answer(report, kind, base_url)
    try:
        report = await context.upstream_check(kind, base_url, key, seconds=CHECK_TIMEOUT_SECONDS)
    except (ValueError, NotImplementedError) as exc:
        # A stored kind this process does not serve (the candidate's was validated).
        raise ProblemError(Code.VALIDATION_ERROR, str(exc)) from None
    return _answer(report, kind, base_url)


def _answer(report: ConnectionReport, kind: str, base_url: str) -> ConfigTestOut:
    return ConfigTestOut(
        **report.model_dump(),
        ok=report.result == "key_accepted",
        provider=kind,
        base_url=_without_credentials(base_url),
    )


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))


_CONFIG = Reply(200, "The runtime configuration (the upstream key masked).", ConfigOut)

operations = [
    Operation(
        "GET",
        "/v1/admin/config",
        show,
        "The runtime configuration",
        "admin",
        (_CONFIG,),
        auth="admin",
    ),
    Operation(
        "PUT",
        "/v1/admin/config",
        put,
        "Change the runtime configuration (any subset; checked as a whole before it is stored)",
        "admin",
        (_CONFIG,),
        auth="admin",
        body=RuntimeConfigPatch,
    ),
    Operation(
        "POST",
        "/v1/admin/config/test",
        test_config,
        "Check the upstream (the stored one, or a candidate) without creating a paid job",
        "admin",
        (
            Reply(
                200,
                "What the check found (any outcome: the check ran); the key is never shown.",
                ConfigTestOut,
            ),
        ),
        auth="admin",
        body=UpstreamCandidate,
    ),
]
