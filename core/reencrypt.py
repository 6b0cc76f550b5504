"""Move every stored secret under the current SECRET_KEY (``google-video secrets reencrypt``).

After a rotation (the new key in ``SECRET_KEY``, the old one in ``SECRET_KEY_PREVIOUS`` on
every process), this rewrites each value still encrypted under a previous key: webhook
endpoint secrets, client webhook secrets (current and previous of each) and the upstream
keys in the runtime config (the configured upstream's and each provider's). Each row is
its own short transaction and is written only if it still holds what was read, so the API
and workers keep running; a value already under the current key is left alone, so the
command is idempotent and safe to re-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from core.repo import config as config_repo
from core.repo import webhooks as repo
from core.repo.webhooks import Ciphertexts
from core.secrets import SecretBox


@dataclass
class Report:
    """What a run did: values rewritten, values already current, rows that changed while
    being read (re-run to finish them), and where a value no known key opens."""

    moved: int = 0
    current: int = 0
    raced: int = 0
    unreadable: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unreadable and not self.raced


async def reencrypt_all(engine: AsyncEngine, box: SecretBox) -> Report:
    report = Report()
    for of in ("endpoints", "clients"):
        await _rows(engine, box, of, report)
    await _upstream_key(engine, box, report)
    return report


async def _rows(
    engine: AsyncEngine, box: SecretBox, of: Literal["endpoints", "clients"], report: Report
) -> None:
    async with engine.connect() as conn:
        rows = await repo.ciphertexts(conn, of)
    for row in rows:
        secret = _moved(box, row.secret, f"{of} {row.key} secret", report)
        previous = (
            _moved(box, row.previous_secret, f"{of} {row.key} previous secret", report)
            if row.previous_secret is not None
            else None
        )
        if secret == row.secret and previous == row.previous_secret:
            continue
        async with engine.begin() as conn:
            new = Ciphertexts(row.key, secret, previous)
            if not await repo.replace_ciphertexts(conn, of, row, new):
                report.raced += 1


async def _upstream_key(engine: AsyncEngine, box: SecretBox, report: Report) -> None:
    async with engine.begin() as conn:
        document = await config_repo.document(conn, for_update=True)
        if document is None:
            return
        stored = str(document.get("upstream_api_key") or "")
        moved = _moved(box, stored, "runtime config upstream_api_key", report)
        changed = {**document, "upstream_api_key": moved}
        providers = document.get("providers")
        if isinstance(providers, dict):
            changed["providers"] = {
                kind: _moved_access(box, kind, access, report) for kind, access in providers.items()
            }
        if changed != document:
            await config_repo.replace(conn, changed)


def _moved_access(box: SecretBox, kind: str, access: object, report: Report) -> object:
    """One ``providers`` entry with its key under the current secret."""
    if not isinstance(access, dict):
        return access
    stored = str(access.get("api_key") or "")
    return {**access, "api_key": _moved(box, stored, f"runtime config providers.{kind}", report)}


def _moved(box: SecretBox, token: str, where: str, report: Report) -> str:
    """``token`` under the current key (counted in ``report``); unchanged if it already is
    or if no key opens it."""
    if box.is_current(token):
        report.current += 1 if token else 0
        return token
    try:
        fresh = box.reencrypt(token)
    except ValueError:
        report.unreadable.append(where)
        return token
    report.moved += 1
    return fresh
