"""The in-memory task store and the per-task query counters."""

import heapq
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

from simulator.directives import Script
from simulator.render_spec import render_spec
from simulator.submit import SubmitRequest
from simulator.timeline import Snapshot, snapshot_at
from simulator.video import RenderSpec


class QueryError(Enum):
    TASK_NOT_EXIST = "task_not_exist"
    QUOTA_EXHAUSTED = "quota_exhausted"
    OVERLOADED = "overloaded"
    OVERLOADED_EMPTY = "overloaded_empty"
    FAILED = "failed"
    PROXY_502 = "proxy_502"
    PROXY_502_EMPTY = "proxy_502_empty"
    NOT_FOUND_PAGE = "not_found_page"


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """How one query of a task is answered: an error, or a view of its snapshot."""

    error: QueryError | None
    snapshot: Snapshot
    weird: bool = False
    with_url: bool = True
    null_data: bool = False


_sequence = itertools.count(1)


@dataclass
class SimTask:
    task_id: str
    prompt: str
    model: str
    notify_hook: str
    base_url: str
    script: Script
    submitted_at: float
    duration: float
    submitted: SubmitRequest | None = None
    auth_from: float = 0.0
    """Unix seconds from which ``poll401*`` may refuse queries."""
    sequence: int = field(default_factory=lambda: next(_sequence))
    queries: int = 0
    lagged: int = 0
    refused: int = 0
    plain: int = 0
    answered: int = 0
    answered_finished: int = 0
    downloads: int = 0

    @cached_property
    def request(self) -> SubmitRequest:
        """The submit that created the task (a bare one when the task was built without)."""
        if self.submitted is not None:
            return self.submitted
        return SubmitRequest(prompt=self.prompt, model=self.model, notify_hook=self.notify_hook)

    def count_refused_query(self) -> None:
        """Count a query refused before the task's script was asked (a revoked key)."""
        self.queries += 1

    @property
    def finishes_at(self) -> float:
        return self.submitted_at + self.duration

    @cached_property
    def render_spec(self) -> RenderSpec:
        """What this task's video shows (see ``simulator.render_spec``)."""
        return render_spec(self.request)

    def snapshot(self, now: float) -> Snapshot:
        return snapshot_at(self.submitted_at, self.duration, self.script.fails, now)

    def answer_query(self, now: float) -> QueryAnswer:
        """Count one query and decide how it is answered, following the script."""
        self.queries += 1
        snapshot = self.snapshot(now)
        script = self.script
        if self.lagged < script.task_not_exist:
            self.lagged += 1
            return QueryAnswer(QueryError.TASK_NOT_EXIST, snapshot)
        if self._refuses(now):
            self.refused += 1
            return QueryAnswer(QueryError.QUOTA_EXHAUSTED, snapshot)
        self.plain += 1
        error = query_error(script, self.plain)
        if error is not None:
            return QueryAnswer(error, snapshot)
        self.answered += 1
        if snapshot.phase.finished:
            self.answered_finished += 1
        return QueryAnswer(
            error=None,
            snapshot=snapshot,
            weird=self.answered <= script.unknown_status,
            with_url=self.answered_finished > script.nourl,
            null_data=self.answered <= script.null_data,
        )

    def _refuses(self, now: float) -> bool:
        script = self.script
        if not script.auth_window:
            return False
        if now < self.auth_from or self.queries <= (script.poll401_after or 0):
            return False
        return script.poll401 is None or self.refused < script.poll401


_SEQUENCE = (
    ("poll429", QueryError.OVERLOADED),
    ("poll429_empty", QueryError.OVERLOADED_EMPTY),
    ("poll500", QueryError.FAILED),
    ("poll502", QueryError.PROXY_502),
    ("poll502_empty", QueryError.PROXY_502_EMPTY),
    ("poll404", QueryError.NOT_FOUND_PAGE),
)


def query_error(script: Script, query_number: int) -> QueryError | None:
    """The scripted error of the ``query_number``-th query (1-based) that reached the
    error sequence: ``poll429``, ``poll429_empty``, ``poll500``, ``poll502``,
    ``poll502_empty``, ``poll404`` in that order."""
    end = 0
    for name, error in _SEQUENCE:
        end += getattr(script, name)
        if query_number <= end:
            return error
    return None


GET_SECONDS_KEPT = 3600


@dataclass(slots=True)
class TaskStore:
    tasks: dict[str, SimTask] = field(default_factory=dict)
    submits: int = 0
    submits_by_prompt: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)
    # GETs of tasks and files (polls and downloads) by wall-clock second (Unix time),
    # the last `GET_SECONDS_KEPT` seconds: what an upstream rate limit would count.
    gets_per_second: Counter[int] = field(default_factory=Counter)
    _notify_queue: list[tuple[float, str]] = field(default_factory=list, init=False)

    def count_submit(self) -> None:
        """Count one authorised submit request, valid or not."""
        self.submits += 1

    def count_prompt(self, prompt: str) -> int:
        """Count one valid submit of ``prompt``; returns how many there were so far."""
        self.submits_by_prompt[prompt] += 1
        return self.submits_by_prompt[prompt]

    def count_get(self) -> None:
        """Count one GET of a task or a file in the current wall-clock second."""
        second = int(time.time())
        if second not in self.gets_per_second and len(self.gets_per_second) >= GET_SECONDS_KEPT:
            del self.gets_per_second[min(self.gets_per_second)]
        self.gets_per_second[second] += 1

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
        self.gets_per_second.clear()
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
            "gets_per_second": {str(s): n for s, n in sorted(self.gets_per_second.items())},
        }
