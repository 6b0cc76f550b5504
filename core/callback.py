"""Unguessable per-task tokens for the upstream's ``notify_hook`` callback URL.

Tokens are made with the current SECRET_KEY and accepted under it or a previous one
(``Settings.secret_keys``), so a key rotation does not orphan the callbacks of tasks
submitted before it."""

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


def task_of(secret_keys: tuple[str, ...], candidate: str) -> str | None:
    """The task id a token was made for under one of ``secret_keys``, or None if it is
    not one of ours."""
    shape = _SHAPE.fullmatch(candidate)
    if shape is None:
        return None
    task_id = shape.group(1)
    given = candidate.encode()
    # Every key is tried (no early exit), so timing does not tell which one matched.
    matched = [hmac.compare_digest(token(key, task_id).encode(), given) for key in secret_keys]
    return task_id if any(matched) else None


def hook_url(callback_url: str, secret_key: str, task_id: str) -> str:
    """The ``notify_hook`` for a task: ``{CALLBACK_URL}/v1/upstream/callback/{token}``."""
    return f"{callback_url.rstrip('/')}/v1/upstream/callback/{token(secret_key, task_id)}"


# Redis key whose presence says an authentic callback reached the API within the last
# CALLBACK_TRUST_SECONDS: the API sets it, workers read it before slowing their polls.
ARRIVING_KEY = "gv:callbacks:arriving"
