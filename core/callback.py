"""Unguessable per-task tokens for the upstream's ``notify_hook`` callback URL."""

from __future__ import annotations

import hashlib
import hmac
import re

from schemas.fields import CALLBACK_TOKEN

# Checked before anything else, so whatever a caller puts in the path (non-ASCII, NUL,
# megabytes) is simply not a token.
_SHAPE = re.compile(CALLBACK_TOKEN)


def token(secret_key: str, task_id: str) -> str:
    mac = hmac.new(f"callback:{secret_key}".encode(), task_id.encode(), hashlib.sha256)
    return f"{task_id}.{mac.hexdigest()[:32]}"


def task_of(secret_key: str, candidate: str) -> str | None:
    """The task id a token was made for, or None if it is not one of ours."""
    shape = _SHAPE.fullmatch(candidate)
    if shape is None:
        return None
    task_id = shape.group(1)
    expected = token(secret_key, task_id).encode()
    return task_id if hmac.compare_digest(expected, candidate.encode()) else None


def hook_url(public_url: str, secret_key: str, task_id: str) -> str:
    return f"{public_url.rstrip('/')}/v1/upstream/callback/{token(secret_key, task_id)}"
