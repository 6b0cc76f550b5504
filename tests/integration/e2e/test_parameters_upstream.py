"""What the caller chose reaches the upstream, and only where the model takes it: the
simulator records each submit body as received."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.e2e.helpers import create, finished, sim_tasks
from tests.integration.images import PNG_URI


async def _received(stack, prompt: str) -> dict[str, Any]:
    for task in await sim_tasks(stack):
        if task["prompt"].startswith(prompt):
            return dict(task["request"])
    raise AssertionError(f"the simulator never received {prompt!r}")


@pytest.mark.parametrize(
    ("model", "params", "sent", "absent"),
    [
        (
            "veo3",
            {"size": "1080x1920", "seed": 7},
            {"aspect_ratio": "9:16", "enable_upsample": True, "seed": 7},
            [],
        ),
        ("veo3.1-fast", {"aspect_ratio": "16:9"}, {"aspect_ratio": "16:9"}, ["enable_upsample"]),
        ("veo3", {}, {}, ["aspect_ratio", "enable_upsample", "seed"]),
        ("veo2", {"size": "1280x720"}, {}, ["aspect_ratio", "enable_upsample"]),
    ],
)
async def test_chosen_parameters_are_sent_where_the_model_takes_them(
    acme, stack, model, params, sent, absent
):
    prompt = f"parameters for {model} {sorted(params)}"
    video = await create(acme, f"{prompt} [sim:duration=1]", model=model, **params)
    done = await finished(acme, video["id"])
    assert done["status"] == "completed", done
    received = await _received(stack, prompt)
    assert received["model"] == model
    for name, value in sent.items():
        assert received.get(name) == value, (name, received)
    for name in absent:
        assert name not in received, (name, received)


async def test_a_first_frame_reaches_the_upstream_as_an_image(acme, stack):
    prompt = "a first frame travels"
    video = await create(
        acme, f"{prompt} [sim:duration=1]", model="veo3-pro-frames", images=[PNG_URI]
    )
    assert (await finished(acme, video["id"]))["status"] == "completed"
    images = (await _received(stack, prompt))["images"]
    assert len(images) == 1 and images[0]["mime"] == "image/png"
