"""Unguessable per-task tokens for the upstream's ``notify_hook`` callback URL."""

from __future__ import annotations

import hashlib
import hmac


def token(secret_key: str, task_id: str) -> str:
    mac = hmac.new(f"callback:{secret_key}".encode(), task_id.encode(), hashlib.sha256)
    return f"{task_id}.{mac.hexdigest()[:32]}"


def task_of(secret_key: str, candidate: str) -> str | None:
    """The task id a token was made for, or None if it is not one of ours."""
    task_id, _, _mac = candidate.partition(".")
    if not task_id or len(candidate) > 200:
        return None
    return task_id if hmac.compare_digest(token(secret_key, task_id), candidate) else None


def hook_url(public_url: str, secret_key: str, task_id: str) -> str:
    return f"{public_url.rstrip('/')}/v1/upstream/callback/{token(secret_key, task_id)}"
