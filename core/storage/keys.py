"""Where a task's objects live in storage, and how a task row refers to a stored input.

Keys are deterministic per task, so a re-run overwrites instead of duplicating:

- ``videos/{task_id}/video.mp4``: the stored video, with its variants beside it
  (``thumbnail.webp``, ``spritesheet.jpg``), so deleting the prefix deletes them all;
- ``inputs/{task_id}/{position}.{ext}``: an input image given inline or uploaded;
- a task's ``input_refs`` hold ``stored:{key}`` for such an input and the URL otherwise;
- ``uploads/{upload_id}.{ext}``: an image uploaded with ``POST /v1/uploads``; a create copies
  it into the task's ``inputs/``, so no task ever refers to an upload's key.
"""

from __future__ import annotations

STORED = "stored:"


def video_prefix(task_id: str) -> str:
    """The video and everything derived from it."""
    return f"videos/{task_id}/"


def video_key(task_id: str) -> str:
    return video_prefix(task_id) + "video.mp4"


def thumbnail_key(task_id: str) -> str:
    """The video's ``thumbnail`` variant (WebP), beside the video."""
    return video_prefix(task_id) + "thumbnail.webp"


def spritesheet_key(task_id: str) -> str:
    """The video's ``spritesheet`` variant (JPEG), beside the video."""
    return video_prefix(task_id) + "spritesheet.jpg"


def input_key(task_id: str, position: int, extension: str) -> str:
    return f"inputs/{task_id}/{position}.{extension}"


def upload_key(upload_id: str, extension: str) -> str:
    """An uploaded image's object (never referred to by a task: creates copy it)."""
    return f"uploads/{upload_id}.{extension}"


def task_prefixes(task_id: str) -> tuple[str, ...]:
    """Every prefix under which the task has objects (what deleting a video deletes)."""
    return (video_prefix(task_id), f"inputs/{task_id}/")


def stored_ref(key: str) -> str:
    """The ``input_refs`` entry of an input stored under ``key``."""
    return STORED + key


def stored_key(ref: str) -> str | None:
    """The storage key of a ``stored:`` reference; None for a URL to pass on."""
    return ref.removeprefix(STORED) if ref.startswith(STORED) else None
