"""The simulator as a real process: ``python -m simulator.main`` behind uvicorn."""

import functools
import io
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import psutil
import pytest

from cli.supervise import Child, free_port, port_open
from tests.eventually import eventually

KEY = "server-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    env = {
        **os.environ,
        "GOOGLE_VIDEO_SIM_TIME_SCALE": "0.01",
        "GOOGLE_VIDEO_SIM_MAX_VIDEO_BYTES": "200000000",  # the bounded-memory test's file
    }
    command = [sys.executable, "-m", "simulator.main", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--api-key", KEY]
    simulator = Child("simulator", command, env=env, cwd=ROOT, output=log)
    ready = functools.partial(port_open, "127.0.0.1", port, 0.2)
    with simulator.start(ready, timeout=STARTUP_DEADLINE):
        assert simulator.pid is not None
        yield f"http://127.0.0.1:{port}", simulator.pid


async def poll_until_finished(client: httpx.AsyncClient, task_id: str) -> dict[str, object]:
    async def task() -> dict[str, object]:
        response = await client.get(f"/google/v1/tasks/{task_id}", headers=AUTH)
        assert response.status_code == 200, response.text
        data: dict[str, object] = response.json()["data"]
        return data

    return await eventually(
        task,
        10,
        until=lambda data: data["status"] in ("SUCCESS", "FAILURE"),
        what=f"task {task_id} finishing",
    )


async def test_real_server_runs_a_task_to_success_and_serves_the_mp4(server):
    base_url, _ = server
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        body = {"prompt": "a fox [sim:duration=1]", "model": "veo3", "enhance_prompt": True}
        submitted = await client.post("/google/v1/models/veo/videos", json=body, headers=AUTH)
        assert submitted.status_code == 200
        task_id = submitted.json()["data"]
        data = await poll_until_finished(client, task_id)
        assert data["status"] == "SUCCESS"
        nested = data["data"]
        assert isinstance(nested, dict)
        assert nested["video_url"] == f"{base_url}/files/{task_id}.mp4"
        video = await client.get(nested["video_url"])
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    with av.open(io.BytesIO(video.content), mode="r") as container:
        assert len(list(container.decode(video=0))) == 64  # veo3: 8 s at 8 fps


async def test_real_server_streams_a_200_mb_file_with_bounded_memory(server):
    base_url, pid = server
    size = 200_000_000
    process = psutil.Process(pid)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        body = {"prompt": f"[sim:duration=0][sim:size={size}]", "model": "veo3"}
        submitted = await client.post("/google/v1/models/veo/videos", json=body, headers=AUTH)
        task_id = submitted.json()["data"]
        await poll_until_finished(client, task_id)
        rss_before = process.memory_info().rss
        rss_peak = rss_before
        received = 0
        head = b""
        async with client.stream("GET", f"/files/{task_id}.mp4") as response:
            assert response.headers["content-length"] == str(size)
            async for chunk in response.aiter_raw():
                if len(head) < 64 * 1024:
                    head += chunk
                received += len(chunk)
                if received % (16 * 1024 * 1024) < len(chunk):
                    rss_peak = max(rss_peak, process.memory_info().rss)
    assert received == size
    assert head[4:8] == b"ftyp"
    assert rss_peak - rss_before < 50 * 1024 * 1024


def test_free_box_follows_the_video_in_a_padded_file(server):
    base_url, _ = server
    with httpx.Client(base_url=base_url, timeout=10) as client:
        body = {"prompt": "[sim:duration=0][sim:size=100000]", "model": "veo3"}
        task_id = client.post("/google/v1/models/veo/videos", json=body, headers=AUTH).json()[
            "data"
        ]
        content = client.get(f"/files/{task_id}.mp4").content
    offset = 0
    boxes = []
    while offset < len(content):
        box_size, box_type = struct.unpack(">I4s", content[offset : offset + 8])
        boxes.append(box_type)
        offset += box_size
    assert offset == len(content) == 100_000
    assert boxes[0] == b"ftyp"
    assert boxes[-1] == b"free"


async def test_submit_timeout_outlasts_the_client_whatever_its_timeout(server):
    # The default hold is 600 s: a client's own timeout (here 1 s, 30 s in production)
    # always expires first, so the submit is ambiguous although the task exists and runs.
    base_url, _ = server
    body = {"prompt": "fox [sim:duration=1][sim:submit=timeout]", "model": "veo3"}
    async with httpx.AsyncClient(base_url=base_url, timeout=1.0) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/google/v1/models/veo/videos", json=body, headers=AUTH)
        tasks = (await client.get("/_sim/tasks")).json()["tasks"]
        (task_id,) = [t["task_id"] for t in tasks if t["prompt"] == body["prompt"]]
        data = await poll_until_finished(client, task_id)
    assert data["status"] == "SUCCESS"
