"""End-to-end demo against a running API (``google-video dev`` or a deployment).

Grants credits to the user ``demo``, creates a text-to-video task (``veo3``) and a
first+last-frame image-to-video task (``veo2-fast-frames``, two PNGs drawn here in
memory), prints their progress while they run, then downloads both MP4s::

    python -m cli.demo --base-url http://127.0.0.1:8000 --admin-key KEY --data-dir .data

Exits 0 only when both videos completed and downloaded as MP4; otherwise prints why
(including the video's ``error.code``/``error.message``) and exits 1.
"""

from __future__ import annotations

import argparse
import base64
import os
import struct
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

USER = "demo"
GRANT = 1000
TERMINAL = frozenset({"completed", "failed"})
TEXT_PROMPT = "A paper boat drifting down a rain-soaked street at dusk, cinematic, slow dolly"
IMAGE_PROMPT = "The red frame slowly dissolves into the blue one, soft light, gentle camera drift"
RED = (220, 30, 40)
BLUE = (30, 60, 220)


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


@dataclass
class Task:
    name: str
    id: str
    video: dict[str, Any]
    shown: tuple[str, str, int] | None = None
    shown_at: float = field(default=0.0)

    @property
    def status(self) -> str:
        return str(self.video.get("status", "?"))

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour 8-bit RGB PNG, written with zlib and struct only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 9))
        + chunk(b"IEND", b"")
    )


def data_uri(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode("ascii")


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if isinstance(body, dict):
        code = body.get("code", "?")
        detail = body.get("detail") or body.get("title") or ""
        return f"HTTP {response.status_code} {code}: {detail}"
    return f"HTTP {response.status_code}: {body!r}"


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.is_error:
        raise DemoError(f"{what} failed: {_problem(response)}")
    body = response.json()
    if not isinstance(body, dict):
        raise DemoError(f"{what}: expected a JSON object, got {body!r}")
    return body


def wait_healthy(client: httpx.Client, deadline: float) -> None:
    last = "no answer yet"
    while True:
        try:
            response = client.get("/healthz", timeout=2)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            url = client.base_url.join("/healthz")
            raise DemoError(f"{url} not healthy before the deadline ({last})")
        time.sleep(0.25)


def create(client: httpx.Client, name: str, body: dict[str, Any]) -> Task:
    video = _json(client.post("/v1/videos", json=body), f"creating the {name} video")
    print(f"created {name:<5} {video['id']}  model={video['model']}  price={video['price']}")
    return Task(name=name, id=str(video["id"]), video=video)


def _line(task: Task, elapsed: float) -> str:
    video = task.video
    internal = video.get("internal_status", "?")
    return (
        f"[{elapsed:6.1f}s] {task.name:<5} {task.id}  {task.status:<11} "
        f"{video.get('progress', 0):>3}%  ({internal})"
    )


def watch(client: httpx.Client, tasks: list[Task], deadline: float, interval: float) -> None:
    """Poll until every task is terminal; print a line per task when it changes."""
    start = time.monotonic()
    while True:
        now = time.monotonic()
        for task in tasks:
            if not task.done:
                task.video = _json(client.get(f"/v1/videos/{task.id}"), f"reading {task.id}")
            key = (task.status, str(task.video.get("internal_status")), task.video["progress"])
            # A line on every change, and a heartbeat every 5 s while nothing moves.
            if key != task.shown or (not task.done and now - task.shown_at >= 5):
                print(_line(task, now - start), flush=True)
                task.shown, task.shown_at = key, now
        if all(task.done for task in tasks):
            return
        if now >= deadline:
            pending = ", ".join(f"{t.name} {t.id} is {t.status}" for t in tasks if not t.done)
            raise DemoError(f"timed out waiting for the videos: {pending}")
        time.sleep(interval)


def download(client: httpx.Client, task: Task, target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    # redirect=0: stream through the API even when storage could presign (S3/MinIO), so the
    # demo also works where the presigned host (e.g. http://minio:9000) is not reachable.
    url = f"/v1/videos/{task.id}/content"
    with client.stream("GET", url, params={"redirect": "0"}, follow_redirects=True) as resp:
        if resp.is_error:
            resp.read()
            raise DemoError(f"downloading {task.id} failed: {_problem(resp)}")
        with partial.open("wb") as out:
            for chunk in resp.iter_bytes():
                out.write(chunk)
    with partial.open("rb") as check:
        head = check.read(8)
    if head[4:8] != b"ftyp":
        raise DemoError(f"{task.id}: downloaded file is not an MP4 (starts with {head!r})")
    partial.replace(target)
    return target.stat().st_size


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    out_dir = data_dir / "demo"
    headers = {"Authorization": f"Bearer {args.admin_key}"}
    started = time.monotonic()
    deadline = started + args.timeout
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=30) as client:
        wait_healthy(client, deadline)
        credits = _json(
            client.post(f"/v1/credits/{USER}/grants", json={"amount": GRANT, "reason": "demo"}),
            f"granting credits to {USER!r}",
        )
        print(f"granted {GRANT} credits to {USER!r}: balance {credits['balance']}")
        red, blue = png(64, 36, RED), png(64, 36, BLUE)
        tasks = [
            create(client, "text", {"prompt": args.text_prompt, "model": "veo3", "user": USER}),
            create(
                client,
                "image",
                {
                    "prompt": args.image_prompt,
                    "model": "veo2-fast-frames",
                    "images": [data_uri(red), data_uri(blue)],
                    "user": USER,
                },
            ),
        ]
        watch(client, tasks, deadline, args.interval)
        failed = [t for t in tasks if t.status != "completed"]
        if failed:
            for task in failed:
                error = task.video.get("error") or {}
                print(
                    f"FAILED {task.name} {task.id}: {task.status} "
                    f"({task.video.get('internal_status')}) "
                    f"error.code={error.get('code')} error.message={error.get('message')!r}",
                    file=sys.stderr,
                )
            return 1
        files = []
        for task in tasks:
            size = download(client, task, out_dir / f"{task.name}.mp4")
            files.append((task, out_dir / f"{task.name}.mp4", size))
    print(f"\nboth videos completed in {time.monotonic() - started:.1f} s")
    for task, path, size in files:
        print(f"  {task.name:<5} {path}  ({size} bytes)")
    print("stored copies:")
    for task, _path, _size in files:
        stored = data_dir / "storage" / "videos" / task.id / "video.mp4"
        where = str(stored) if stored.is_file() else task.video.get("download_url") or "?"
        print(f"  {task.name:<5} {where}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cli.demo", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--admin-key",
        default=os.environ.get("GOOGLE_VIDEO_ADMIN_KEY"),
        help="an admin API key (default: $GOOGLE_VIDEO_ADMIN_KEY)",
    )
    parser.add_argument(
        "--data-dir",
        default=".data",
        help="the dev data dir: downloads go to DATA_DIR/demo, stored copies are looked up there",
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="overall deadline, seconds")
    parser.add_argument("--text-prompt", default=TEXT_PROMPT)
    parser.add_argument(
        "--image-prompt",
        default=IMAGE_PROMPT,
        help="e.g. append [sim:duration=20] or [sim:fail=...] to script the simulator",
    )
    parser.add_argument("--interval", type=float, default=0.5, help="poll interval, seconds")
    args = parser.parse_args(argv)
    if not args.admin_key:
        parser.error("--admin-key (or GOOGLE_VIDEO_ADMIN_KEY) is required")
    try:
        return run(args)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
