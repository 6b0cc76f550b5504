"""The in-memory task store and the per-task query counters."""

import heapq
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from simulator.directives import Script
from simulator.timeline import Snapshot, snapshot_at


class QueryError(Enum):
    OVERLOADED = "overloaded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """How one query of a task is answered: an error, or a view of its snapshot."""

    error: QueryError | None
    snapshot: Snapshot
    weird: bool = False
    with_url: bool = True


@dataclass(slots=True)
class SimTask:
    task_id: str
    prompt: str
    model: str
    notify_hook: str
    base_url: str
    script: Script
    submitted_at: float
    duration: float
    queries: int = 0
    answered: int = 0
    answered_finished: int = 0
    downloads: int = 0

    @property
    def finishes_at(self) -> float:
        return self.submitted_at + self.duration

    def snapshot(self, now: float) -> Snapshot:
        return snapshot_at(self.submitted_at, self.duration, self.script.fail is not None, now)

    def answer_query(self, now: float) -> QueryAnswer:
        """Count one query and decide how it is answered, following the script."""
        self.queries += 1
        snapshot = self.snapshot(now)
        error = query_error(self.script, self.queries)
        if error is not None:
            return QueryAnswer(error, snapshot)
        self.answered += 1
        if snapshot.phase.finished:
            self.answered_finished += 1
        return QueryAnswer(
            error=None,
            snapshot=snapshot,
            weird=self.answered <= self.script.unknown_status,
            with_url=self.answered_finished > self.script.nourl,
        )


def query_error(script: Script, query_number: int) -> QueryError | None:
    """The scripted error of the ``query_number``-th query (1-based), if any."""
    if query_number <= script.poll429:
        return QueryError.OVERLOADED
    if query_number <= script.poll429 + script.poll500:
        return QueryError.FAILED
    return None


@dataclass(slots=True)
class TaskStore:
    tasks: dict[str, SimTask] = field(default_factory=dict)
    submits: int = 0
    submits_by_prompt: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)
    _notify_queue: list[tuple[float, str]] = field(default_factory=list, init=False)

    def count_submit(self) -> None:
        """Count one authorised submit request, valid or not."""
        self.submits += 1

    def count_prompt(self, prompt: str) -> int:
        """Count one valid submit of ``prompt``; returns how many there were so far."""
        self.submits_by_prompt[prompt] += 1
        return self.submits_by_prompt[prompt]

    def add(self, task: SimTask) -> None:
        self.tasks[task.task_id] = task
        if task.notify_hook:
            heapq.heappush(self._notify_queue, (task.finishes_at, task.task_id))

    def get(self, task_id: str) -> SimTask | None:
        return self.tasks.get(task_id)

    def pop_due_notifications(self, now: float) -> list[SimTask]:
        """The tasks with a notify hook that finished by ``now``, each returned once."""
        due: list[SimTask] = []
        while self._notify_queue and self._notify_queue[0][0] <= now:
            _, task_id = heapq.heappop(self._notify_queue)
            task = self.tasks.get(task_id)
            if task is not None:
                due.append(task)
        return due

    def reset(self) -> None:
        self.tasks.clear()
        self.submits = 0
        self.submits_by_prompt.clear()
        self.notifications.clear()
        self._notify_queue.clear()

    def stats(self) -> dict[str, object]:
        tasks = self.tasks.values()
        return {
            "submits": self.submits,
            "tasks": len(self.tasks),
            "polls_total": sum(task.queries for task in tasks),
            "polls": {task.task_id: task.queries for task in tasks},
            "downloads_total": sum(task.downloads for task in tasks),
            "downloads": {task.task_id: task.downloads for task in tasks if task.downloads},
            "notifications": dict(self.notifications),
        }
