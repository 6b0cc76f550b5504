"""``keys``, ``credits`` and ``config`` over the HTTP API (``/v1/admin/keys``,
``/v1/credits/{user}``, ``/v1/admin/config``): what an admin key may do from anywhere."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cli import views
from cli.failures import FAILED, USAGE, CliError
from cli.http_client import ApiClient
from cli.output import Output


def segment(value: str, what: str) -> str:
    """``value`` as one path segment (never another endpoint's path)."""
    if value in ("", ".", ".."):
        raise CliError(f"not a {what}: {value!r}", USAGE)
    return quote(value, safe="")


# --- keys -----------------------------------------------------------------------------


def keys(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    if args.action == "create":
        body: dict[str, Any] = {"name": args.name, "role": args.role}
        if args.client is not None:
            body["client"] = args.client
        views.key_created(out, api.call("POST", "/v1/admin/keys", json=body))
        return 0
    if args.action == "list":
        params = {"include_revoked": "false" if args.active else "true"}
        views.key_list(out, api.call("GET", "/v1/admin/keys", params=params, retry=True))
        return 0
    key_id = segment(args.key_id, "key id")
    views.key_revoked(out, api.call("DELETE", f"/v1/admin/keys/{key_id}"))
    return 0


# --- credits --------------------------------------------------------------------------


def credits(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    user = segment(args.user, "user name")
    if args.action == "show":
        params: dict[str, str | int] = {"limit": args.limit}
        if args.before is not None:
            params["before"] = args.before
        if args.client is not None:
            params["client"] = args.client
        body = api.call("GET", f"/v1/credits/{user}", params=params, retry=True)
        views.account(out, body, client=args.client)
        return 0
    params = {"client": args.client} if args.client is not None else {}
    grant = {"amount": args.amount, "reason": args.reason}
    body = api.call("POST", f"/v1/credits/{user}/grants", params=params, json=grant)
    views.granted(out, body, args.amount, client=args.client)
    return 0


# --- config ---------------------------------------------------------------------------


def config(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    if args.action == "show":
        views.config(out, api.call("GET", "/v1/admin/config", retry=True))
        return 0
    if args.action == "set":
        patch = dict(_setting(item) for item in args.settings)
        views.config(out, api.call("PUT", "/v1/admin/config", json=patch, retry=True))
        return 0
    candidate = {
        name: value
        for name, value in (
            ("upstream_kind", args.kind),
            ("upstream_base_url", args.base_url),
            ("upstream_api_key", args.upstream_key),
        )
        if value is not None
    }
    report = api.call("POST", "/v1/admin/config/test", json=candidate)
    views.config_test(out, report)
    return 0 if report.get("ok") else FAILED


def _text_fields() -> frozenset[str]:
    """The config fields whose value is text: ``NAME=VALUE`` sends VALUE as it is typed;
    every other field's VALUE is JSON (numbers, true/false, lists)."""
    from schemas.config import RuntimeConfigPatch  # pydantic: only for `config set`

    properties = RuntimeConfigPatch.model_json_schema()["properties"]
    return frozenset(
        name
        for name, schema in properties.items()
        if schema.get("type") == "string"
        or (schema.get("enum") and all(isinstance(v, str) for v in schema["enum"]))
    )


def _setting(item: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (``NAME=@FILE`` reads VALUE from a file) as one field of the patch."""
    name, sep, raw = item.partition("=")
    if not sep or not name:
        raise CliError(f"config set {item!r}: write NAME=VALUE (or NAME=@FILE)", USAGE)
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {raw[1:]}: {exc.strerror or exc}", USAGE) from None
        except UnicodeDecodeError:
            raise CliError(f"config set {name}: {raw[1:]} is not UTF-8 text", USAGE) from None
    if name in _text_fields():
        return name, raw
    try:
        return name, json.loads(raw)
    except ValueError:
        raise CliError(
            f"config set {name}: {raw[:60]!r} is not JSON (a number, true/false, a list…)",
            USAGE,
        ) from None
