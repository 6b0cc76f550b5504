"""Closed-loop HTTP load: fixed concurrency, keep-alive, fixed duration after a warm-up.

``wrk`` (one thread, a Lua script for the POST bodies) when installed: it costs far less
CPU than Python on a 2-core machine where the generator shares the cores with the server.
Otherwise a raw-asyncio generator (uvloop, no HTTP library), run as a separate process:
``python -m bench.loadgen --port P --path /v1/videos --key K --users N ...``.

Every request is ``POST path`` with a JSON text-to-video body; ``user`` cycles over
``u0 .. u{users-1}`` so concurrent creates do not all queue on one account row lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROMPT = "A red fox running through fresh snow at dawn, cinematic"


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def body_for(i: int, users: int) -> str:
    return json.dumps({"prompt": PROMPT, "model": "veo3", "user": f"u{i % users}"})


_LUA = r"""
local users = __USERS__
local path = "__PATH__"
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer __KEY__"}
local i = 0
request = function()
  i = i + 1
  local body = string.format('{"prompt": "__PROMPT__", "model": "veo3", "user": "u%d"}', i % users)
  return wrk.format("POST", path, headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    port: int, path: str, key: str, users: int, concurrency: int, seconds: float
) -> LoadResult:
    script = (
        _LUA.replace("__USERS__", str(users))
        .replace("__PATH__", path)
        .replace("__KEY__", key)
        .replace("__PROMPT__", PROMPT)
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        lua = handle.name
    try:
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
        command += ["--timeout", "10s", "-s", lua, f"http://127.0.0.1:{port}{path}"]
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    finally:
        Path(lua).unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    secs = data["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        requests=data["requests"],
        seconds=secs,
        rps=data["requests"] / secs,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        non_2xx=data["status"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
    )


# ---------------------------------------------------------------- Python fallback


async def _connection(
    port: int,
    path: str,
    key: str,
    users: int,
    start_at: float,
    end_at: float,
    counter: list[int],
    latencies: list[float],
    bad: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            now = time.perf_counter()
            if now >= end_at:
                return
            counter[0] += 1
            body = body_for(counter[0], users).encode()
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            writer.write(head + body)
            raw = await reader.readuntil(b"\r\n\r\n")
            status = int(raw[9:12])
            length = 0
            for line in raw.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            done = time.perf_counter()
            if now >= start_at:  # started after the warm-up: measured
                latencies.append(done - now)
                if not 200 <= status < 300:
                    bad[0] += 1
    finally:
        writer.close()


async def _python_load(
    port: int, path: str, key: str, users: int, concurrency: int, seconds: float, warmup: float
) -> LoadResult:
    start_at = time.perf_counter() + warmup
    end_at = start_at + seconds
    counter, bad = [0], [0]
    latencies: list[float] = []
    await asyncio.gather(
        *(
            _connection(port, path, key, users, start_at, end_at, counter, latencies, bad)
            for _ in range(concurrency)
        )
    )
    latencies.sort()
    n = len(latencies)
    return LoadResult(
        tool="python",
        requests=n,
        seconds=seconds,
        rps=n / seconds,
        p50_ms=latencies[n // 2] * 1000 if n else 0.0,
        p99_ms=latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0.0,
        non_2xx=bad[0],
        socket_errors=0,
    )


def run_python(
    port: int, path: str, key: str, users: int, concurrency: int, seconds: float, warmup: float
) -> LoadResult:
    """The Python generator in its own process (it must not share the bench's loop)."""
    command = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path", path]
    command += ["--key", key, "--users", str(users), "--concurrency", str(concurrency)]
    command += ["--seconds", str(seconds), "--warmup", str(warmup)]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + warmup + 30,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return LoadResult(**json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/videos")
    parser.add_argument("--key", required=True)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    load = _python_load(
        args.port, args.path, args.key, args.users, args.concurrency, args.seconds, args.warmup
    )
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(load)
    else:
        result = uvloop.run(load)
    print(json.dumps(result.as_dict()))


if __name__ == "__main__":
    main()
