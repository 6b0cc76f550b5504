"""The task state machine (docs/architecture.md) and its public, OpenAI-style projection."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    RUNNING = "running"
    STORING = "storing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PublicStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL: frozenset[TaskStatus] = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
)
ACTIVE: frozenset[TaskStatus] = frozenset(set(TaskStatus) - TERMINAL)

_PUBLIC = {
    TaskStatus.QUEUED: PublicStatus.QUEUED,
    TaskStatus.SUBMITTING: PublicStatus.QUEUED,
    TaskStatus.RUNNING: PublicStatus.IN_PROGRESS,
    TaskStatus.STORING: PublicStatus.IN_PROGRESS,
    TaskStatus.COMPLETED: PublicStatus.COMPLETED,
    TaskStatus.FAILED: PublicStatus.FAILED,
    TaskStatus.CANCELLED: PublicStatus.FAILED,
}


def public_status(status: TaskStatus) -> PublicStatus:
    return _PUBLIC[status]


def internal_statuses(public: PublicStatus) -> list[TaskStatus]:
    """The internal statuses a public status filter matches."""
    return [s for s, p in _PUBLIC.items() if p == public]


class TaskType(StrEnum):
    TEXT_TO_VIDEO = "text_to_video"
    IMAGE_TO_VIDEO = "image_to_video"


class StorageStatus(StrEnum):
    """A task's objects: ``deleting`` from the video's deletion until the purge job has
    removed every object (retried until the store lets it), then ``deleted``."""

    PENDING = "pending"
    STORED = "stored"
    DELETING = "deleting"
    DELETED = "deleted"


class EntryKind(StrEnum):
    GRANT = "grant"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    ADJUST = "adjust"


class ActivityKind(StrEnum):
    """What one ``task_activity`` row records (the console's timeline)."""

    STATUS = "status"  # the task moved to ``detail.status``
    SUBMIT = "submit"  # one upstream submit call and its outcome
    POLL = "poll"  # one upstream poll (a look at the upstream task) and what it said


class Role(StrEnum):
    ADMIN = "admin"
    CLIENT = "client"


class EventType(StrEnum):
    """Webhook event types (the OpenAI Videos API's names)."""

    VIDEO_COMPLETED = "video.completed"
    VIDEO_FAILED = "video.failed"
    VIDEO_CANCELLED = "video.cancelled"


EVENT_OF: dict[TaskStatus, EventType] = {
    TaskStatus.COMPLETED: EventType.VIDEO_COMPLETED,
    TaskStatus.FAILED: EventType.VIDEO_FAILED,
    TaskStatus.CANCELLED: EventType.VIDEO_CANCELLED,
}


class DeliveryStatus(StrEnum):
    """A webhook delivery: ``pending`` until one of the final states."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DISABLED = "disabled"
    CANCELLED = "cancelled"
