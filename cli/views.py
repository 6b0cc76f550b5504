"""How keys, accounts and the runtime config are printed, the same whether they came
from the HTTP API or from the database (``core.presenter`` makes the same objects)."""

from __future__ import annotations

from typing import Any

from cli.output import Output, text, when


def key_created(out: Output, key: dict[str, Any]) -> None:
    if out.as_json:
        out.json(key)
        return
    out.line(f"id:   {key['id']}\nkey:  {key['key']}")
    out.line(f"(for client {key['client']!r}, role {key['role']}; shown once: store it now)")


def key_list(out: Output, page: dict[str, Any]) -> None:
    if out.as_json:
        out.json(page)
        return
    out.table(
        ("id", "prefix", "client", "name", "role", "created", "last used", "revoked"),
        (
            (
                k["id"],
                k["prefix"] + "…",
                k["client"],
                k["name"],
                k["role"],
                when(k["created_at"]),
                when(k["last_used_at"]),
                when(k["revoked_at"]),
            )
            for k in page["data"]
        ),
    )


def key_revoked(out: Output, revoked: dict[str, Any]) -> None:
    if out.as_json:
        out.json(revoked)
    else:
        out.line(f"revoked {revoked['id']}")


def account(out: Output, body: dict[str, Any], *, client: str | None) -> None:
    """A balance line, then the ledger entries (newest first)."""
    if out.as_json:
        out.json(body)
        return
    of = f" (client {client})" if client else ""
    out.line(f"{body['user']}{of}: balance {body['balance']}, held {body['held']}")
    if not body["entries"]:
        return
    out.table(
        ("entry", "at", "kind", "amount", "balance after", "held after", "video", "reason"),
        (
            (
                str(e["id"]),
                when(e["at"]),
                e["kind"],
                f"{e['amount']:+d}",
                str(e["balance_after"]),
                str(e["held_after"]),
                text(e["task_id"]),
                text(e["reason"]),
            )
            for e in body["entries"]
        ),
    )
    if body.get("has_more"):
        out.note(f"older entries: --before {body['entries'][-1]['id']}")


def granted(out: Output, body: dict[str, Any], amount: int, *, client: str | None) -> None:
    if out.as_json:
        out.json(body)
        return
    of = f" (client {client})" if client else ""
    verb = "granted" if amount > 0 else "adjusted"
    out.line(
        f"{verb} {amount:+d} to {body['user']}{of}: balance {body['balance']}, held {body['held']}"
    )


def config(out: Output, body: dict[str, Any]) -> None:
    if out.as_json:
        out.json(body)
        return
    rows = [(name, text(value)) for name, value in body.items() if name != "models"]
    models = body.get("models") or []
    rows.append(("models", ", ".join(str(m.get("id")) for m in models if isinstance(m, dict))))
    out.fields(rows)


def config_test(out: Output, body: dict[str, Any]) -> None:
    if out.as_json:
        out.json(body)
        return
    status = f", HTTP {body['status']}" if body.get("status") is not None else ""
    verdict = "ok" if body.get("ok") else "NOT ok"
    out.line(
        f"{verdict}: {body['result']} by {body['provider']} at {body['base_url']}"
        f" ({body['latency_ms']} ms{status}): {body['detail']}"
    )
