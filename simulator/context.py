"""What the routes share: the store, the clock, the random source, quirks and videos."""

import hmac
import random
from dataclasses import dataclass

from starlette.requests import Request

from simulator.directives import Script, parse_script
from simulator.quirks import Quirks
from simulator.render_cache import RenderCache
from simulator.state import SimTask, TaskStore
from simulator.submit import SubmitRequest
from simulator.timeline import Clock, sample_duration
from simulator.views import new_task_id


@dataclass(slots=True)
class Simulator:
    api_key: str
    clock: Clock
    rng: random.Random
    time_scale: float
    submit_timeout_delay: float
    video: bytes | None
    """One MP4 served for every task instead of the per-task render (tests set it)."""
    video_bytes: int | None
    max_video_bytes: int
    """No served file is longer: ``[sim:size]`` and ``video_bytes`` are clamped to it."""
    store: TaskStore
    renders: RenderCache
    quirks: Quirks
    startup_quirks: Quirks

    def authorized(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            key.strip().encode(), self.api_key.encode()
        )

    def script_for(self, prompt: str) -> Script:
        """The prompt's directives over the quirks; raises DirectiveError."""
        return parse_script(f"{self.quirks.directives} {prompt}")

    def start_task(
        self, submit: SubmitRequest, script: Script, base_url: str, task_id: str | None = None
    ) -> SimTask:
        now = self.clock()
        task = SimTask(
            task_id=task_id or new_task_id(script.submit_shape, submit.model, now),
            prompt=submit.prompt,
            model=submit.model,
            notify_hook=submit.notify_hook,
            base_url=base_url,
            script=script,
            submitted_at=now,
            duration=sample_duration(script, self.rng, self.time_scale),
            submitted=submit,
            auth_from=now + (script.poll401_after_s or 0.0) * self.time_scale,
        )
        self.store.add(task)
        return task

    def target_size(self, task: SimTask) -> int | None:
        """The length to pad ``task``'s file to (None: as rendered), at most
        ``max_video_bytes``."""
        wanted = task.script.size if task.script.size is not None else self.video_bytes
        return None if wanted is None else min(wanted, self.max_video_bytes)

    async def video_for(self, task: SimTask) -> bytes:
        """The MP4 of ``task``: its own render, or the fixed video when one was given."""
        if self.video is not None:
            return self.video
        return await self.renders.get(task.render_spec)

    def reset(self) -> None:
        """Forget every task and render, and go back to the start-up quirks."""
        self.store.reset()
        self.renders.clear()
        self.quirks = self.startup_quirks


def simulator_of(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator
