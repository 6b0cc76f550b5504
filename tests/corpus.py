"""The shared corpus of real upstream answers (``<repo>/../shared/upstream-corpus/``).

CI runs in a fresh clone with a copy of ``shared/`` beside it; a missing corpus is an
error, never a skip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "upstream-corpus"
_CONTENT_TYPES = {".json": "application/json", ".html": "text/html", ".txt": "text/plain"}


@dataclass(frozen=True)
class Answer:
    """One corpus file as an HTTP answer: status, body bytes, headers."""

    status: int
    body: bytes
    headers: dict[str, str | bytes]


def manifest(provider: str) -> list[dict[str, Any]]:
    """Every entry of ``<provider>/manifest.json``; FileNotFoundError when it is missing."""
    path = CORPUS / provider / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"the upstream corpus is missing: {path} (expected shared/ beside the repo)"
        )
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return entries


def answer(provider: str, entry: dict[str, Any]) -> Answer:
    """The manifest `entry`'s file with its HTTP status and headers."""
    name = entry["file"]
    headers: dict[str, str | bytes] = {
        "Content-Type": _CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
    }
    headers.update(entry.get("headers", {}))
    return Answer(entry["http_status"], (CORPUS / provider / name).read_bytes(), headers)


def gateway(name: str) -> Answer:
    """The gateway corpus file `name` as the answer it was recorded with."""
    for entry in manifest("gateway"):
        if entry["file"] == name:
            return answer("gateway", entry)
    raise KeyError(f"{name} is not in the gateway corpus")
