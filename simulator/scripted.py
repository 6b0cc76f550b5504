"""What a scripted submit answers, shared by both protocols the simulator speaks."""

import asyncio
import contextlib

from starlette.requests import Request

from simulator.directives import Script, SubmitOutcome


def scripted_outcome(script: Script, attempt: int) -> SubmitOutcome | None:
    """What the ``attempt``-th submit of this prompt answers, ``None`` for success."""
    if script.submit is not None and (
        script.submit_times is None or attempt <= script.submit_times
    ):
        return script.submit
    if script.submit_then is not None and script.submit_times is not None:
        return script.submit_then
    if attempt <= script.submit500:
        return SubmitOutcome.FAILED
    if attempt <= script.submit_timeout:
        return SubmitOutcome.TIMEOUT
    return None


async def hold_back(request: Request, seconds: float) -> None:
    """Wait until the client hangs up, at most ``seconds``: nobody would read the answer."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass
