"""What the routes share: the store, the clock, the random source and the video."""

import hmac
import random
import uuid
from dataclasses import dataclass

from starlette.requests import Request

from simulator.directives import Script
from simulator.state import SimTask, TaskStore
from simulator.submit import SubmitRequest
from simulator.timeline import Clock, sample_duration


@dataclass(slots=True)
class Simulator:
    api_key: str
    clock: Clock
    rng: random.Random
    time_scale: float
    submit_timeout_delay: float
    video: bytes
    video_bytes: int | None
    store: TaskStore

    def authorized(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            key.strip().encode(), self.api_key.encode()
        )

    def start_task(self, submit: SubmitRequest, script: Script, base_url: str) -> SimTask:
        task = SimTask(
            task_id=str(uuid.uuid4()),
            prompt=submit.prompt,
            model=submit.model,
            notify_hook=submit.notify_hook,
            base_url=base_url,
            script=script,
            submitted_at=self.clock(),
            duration=sample_duration(script, self.rng, self.time_scale),
        )
        self.store.add(task)
        return task

    def target_size(self, task: SimTask) -> int | None:
        return task.script.size if task.script.size is not None else self.video_bytes


def simulator_of(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator
