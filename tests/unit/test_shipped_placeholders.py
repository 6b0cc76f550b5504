"""Every secret-looking value the repository ships is refused in production.

The scan reads the files a user copies from (compose, Makefile, deploy/, README, docs, the
dev command, the simulator's defaults) and collects what is assigned to a key, secret,
password or URL credential, plus every ``CHANGE_ME…`` and ``gv_…`` token. A new default
added to any of them fails here until ``schemas.secret_strength`` refuses it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STRONG_SECRET = "3f9c1d7a0b6e4c2f8a5d9e1b7c3a0f6d"
STRONG_ADMIN = "gv_Qm7xK2pL9vR4tN8wZ1cY6bH3jF5dS0aE"


def shipped_files() -> list[Path]:
    files = [ROOT / "Makefile", ROOT / "docker-compose.yml", ROOT / "README.md"]
    files += [p for p in (ROOT / "deploy").rglob("*") if p.is_file()]
    files += sorted((ROOT / "docs").rglob("*.md"))
    files += [ROOT / "cli" / "dev.py", ROOT / "cli" / "main.py", ROOT / "simulator" / "main.py"]
    files += [p for p in ROOT.glob(".env*") if p.is_file()]
    return files


_SECRET_NAME = r"\w*(?:KEY|SECRET|PASSWORD|TOKEN)\w*"
PATTERNS = [
    # NAME: value / NAME=value / NAME ?= value (YAML, env files, Makefile, shell)
    re.compile(rf"\b{_SECRET_NAME}\s*(?:\?=|:(?!-)|=)\s*\"?([^\"\s$'`{{}}]+)"),
    # ${NAME:-default} (compose)
    re.compile(rf"\$\{{{_SECRET_NAME}:-([^}}]+)\}}"),
    # credentials in a URL: scheme://user:password@host
    re.compile(r"[a-z+]+://[^:/\s@\"]*:([^@\s\"/]+)@"),
    # command-line keys and their Python defaults
    re.compile(r"--(?:admin|api)-key[ =]\"?([^\"\s$`]+)"),
    re.compile(r"\"--(?:admin|api)-key\",\s*default=\"([^\"]+)\""),
    re.compile(r"\bexport KEY=(\S+)"),
    re.compile(r"\b(CHANGE_ME\w*)"),
    re.compile(r"\b(gv_\w{8,})"),
]
# Names, references and prose the patterns above also catch: not values.
NOT_VALUES = re.compile(r"^(?:K|KEY|\w+\(.*|\w+\[.*|\{\w+\}|secret_key|sim_key|\.\.\.|…|<.*>)$")


def shipped_values() -> dict[str, set[str]]:
    """Each value found, with the files it was found in."""
    found: dict[str, set[str]] = {}
    for path in shipped_files():
        # A checkov waiver ("checkov:skip=CKV_SECRET_4:reason") gives its reason in prose.
        text = re.sub(r"checkov:skip=\w+:[^\n]*", "", path.read_text(errors="replace"))
        for pattern in PATTERNS:
            for match in pattern.finditer(text):
                value = match.group(1).strip().strip("\"'`,")
                if value and not NOT_VALUES.match(value) and not value.isdigit():
                    found.setdefault(value, set()).add(str(path.relative_to(ROOT)))
    return found


FOUND = shipped_values()


def test_the_scan_finds_the_placeholders_the_review_reported() -> None:
    for value in (
        "CHANGE_ME_TO_64_RANDOM_HEX_CHARACTERS",
        "CHANGE_ME_TO_A_LONG_RANDOM_KEY",
        "gv_local_dev_admin_key_change_me_0001",
        "compose-local-secret-key-0123456789",
        "gv_compose_admin_key_0123456789",
        "minio-local-secret",
    ):
        assert value in FOUND, sorted(FOUND)


def _production(**values: str) -> Settings:
    base = {"environment": "production", "secret_key": STRONG_SECRET, "admin_key": STRONG_ADMIN}
    return Settings.model_validate({**base, **values})


def test_strong_values_pass_the_same_checks() -> None:
    assert _production().environment == "production"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GOOGLE_VIDEO_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("value", sorted(FOUND))
def test_every_shipped_value_is_refused_in_production_wherever_it_is_used(value: str) -> None:
    places = {
        "secret_key": value,
        "admin_key": value,
        "s3_access_key_id": value,
        "s3_secret_access_key": value,
        "upstream_api_key": value,
        "database_url": f"postgresql+asyncpg://u:{value}@db.internal/gv",
        "redis_url": f"redis://:{value}@redis.internal:6379/0",
    }
    for name, setting in places.items():
        with pytest.raises(ValidationError, match=name.upper()):
            _production(**{name: setting})
