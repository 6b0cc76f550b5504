"""Storing a large video: the product's store path against raw boto3 from the same stream.

The simulator serves one padded MP4 (``GOOGLE_VIDEO_SIM_MAX_VIDEO_BYTES`` raised for it,
``[sim:size=N]`` in the prompt). Each measurement is a fresh child process that downloads
it once and stores it, so its RSS growth (sampled every 10 ms, from just before the
transfer) and its CPU (``getrusage``, all threads) are its own:

- ``ours-s3``: what ``store_task`` runs (``worker.jobs.store._copy`` without the heartbeat,
  the provider lease and the media probe): ``GatewayClient.download`` → ``refuse_declared``
  → ``capped`` → ``checked_mp4`` → ``S3Storage.put_stream`` into moto (server mode).
- ``ours-s3-crc32``: the same with ``S3_CHECKSUM_ALGORITHM=CRC32`` (``S3Storage(...,
  checksum_algorithm="CRC32")``), the opt-in for stores with S3's flexible checksums.
- ``raw-s3``: ``urllib.request.urlopen`` → boto3 ``upload_fileobj`` (s3transfer's defaults:
  8 MiB parts, 10 threads) into the same moto. boto3's defaults include a CRC32 checksum of
  every part (``request_checksum_calculation="when_supported"``).
- ``raw-s3-when-required``: the same, with checksums only where the operation requires one
  (``request_checksum_calculation="when_required"``), which is ours by default
  (DESIGN.md §7): not the target's reference, the like-for-like one beside it.
- ``ours-local`` / ``raw-local``: the same download into ``LocalStorage.put_stream``, against
  urllib → ``shutil.copyfileobj`` into a file, fsynced (no hashing, no MP4 check).

Ours and raw alternate within each round, in the same run. The simulator's and moto's CPU
during each measurement is reported beside the child's: they share the machine's cores.

Run alone: ``python -m bench.storing [--size-mib N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import psutil
from botocore.config import Config

from bench.common import PY, ROOT, SIM_KEY, cpu_seconds, log, sim_command, start_child
from cli.localservices import MotoServer
from cli.supervise import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
BUCKET = "bench-storing"
KEY = "videos/bench.mp4"
MODES = ("ours-s3", "ours-s3-crc32", "raw-s3", "raw-s3-when-required", "ours-local", "raw-local")
THROUGHPUT_TARGET = 0.8
RSS_TARGET_MIB = 64
CHILD_TIMEOUT = 600.0
BUDGET = 900.0  # seconds for a whole run (bench/run.py): 12 stores of 1 GiB
CREDENTIAL = "bench"  # moto accepts any


def _s3_client(endpoint: str, *, every_part: bool = True) -> S3Client:
    """A boto3 client of moto; ``every_part``: boto3's default, a CRC32 checksum of every
    part, else checksums only where an operation requires one."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIAL,
        aws_secret_access_key=CREDENTIAL,
        config=Config(
            request_checksum_calculation="when_supported" if every_part else "when_required"
        ),
    )


# --- the child: one download-and-store, measured from inside -------------------------------


class Meter:
    """From ``start()`` to ``stop()``: wall seconds, this process's CPU seconds (all
    threads) and its peak RSS growth in bytes (sampled every ``interval`` seconds)."""

    def __init__(self, interval: float = 0.01) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.baseline = self.peak = 0
        self.started = self.cpu = 0.0
        self.figures: dict[str, float] = {}

    def start(self) -> None:
        self.baseline = self.peak = self._process.memory_info().rss
        self.started, self.cpu = time.perf_counter(), _cpu()
        self._thread.start()

    def stop(self) -> None:
        seconds, cpu = time.perf_counter() - self.started, _cpu() - self.cpu
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        self.figures = {"seconds": seconds, "cpu_s": cpu, "rss_growth": self.peak - self.baseline}

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _ours(args: argparse.Namespace) -> int:
    # Imported here: the raw children must not pay for (or hold in memory) the product.
    from core.storage.local import LocalStorage
    from core.storage.s3 import S3Storage
    from core.storage.streams import capped, refuse_declared
    from worker.jobs.store import checked_mp4
    from worker.upstream.gateway.client import GatewayClient

    storage: S3Storage | LocalStorage
    if args.mode.startswith("ours-s3"):
        storage = S3Storage(
            BUCKET,
            endpoint_url=args.s3,
            access_key_id=CREDENTIAL,
            secret_access_key=CREDENTIAL,
            checksum_algorithm="CRC32" if args.mode == "ours-s3-crc32" else None,
        )
    else:
        storage = LocalStorage(Path(args.dir))
    limit = args.size + 1
    async with GatewayClient(args.sim, SIM_KEY) as upstream:
        await storage.check()  # connections and threads set up before the baseline
        meter = Meter()
        meter.start()
        async with upstream.download(args.url) as download:
            refuse_declared(download.content_length, limit)
            chunks = checked_mp4(capped(download.chunks, limit))
            stored = await storage.put_stream(KEY, chunks, "video/mp4")
        meter.stop()
        args.figures = meter.figures
    await storage.close()
    return stored.size


def _raw(args: argparse.Namespace) -> int:
    if args.mode.startswith("raw-s3"):
        client = _s3_client(args.s3, every_part=args.mode == "raw-s3")
        client.head_bucket(Bucket=BUCKET)  # connection set up before the baseline
        meter = Meter()
        meter.start()
        with urllib.request.urlopen(args.url) as response:  # noqa: S310 (127.0.0.1 only)
            client.upload_fileobj(response, BUCKET, KEY, ExtraArgs={"ContentType": "video/mp4"})
        meter.stop()
        args.figures = meter.figures
        return client.head_object(Bucket=BUCKET, Key=KEY)["ContentLength"]
    target = Path(args.dir) / KEY
    target.parent.mkdir(parents=True, exist_ok=True)
    meter = Meter()
    meter.start()
    with urllib.request.urlopen(args.url) as response, target.open("wb") as file:  # noqa: S310
        shutil.copyfileobj(response, file, MiB)
        file.flush()
        os.fsync(file.fileno())
    meter.stop()
    args.figures = meter.figures
    return target.stat().st_size


def child_main(argv: Sequence[str]) -> None:
    """One measurement; prints ``{"bytes", "seconds", "cpu_s", "rss_growth"}`` as JSON
    (process start-up and imports excluded)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=MODES, required=True)
    for name in ("--url", "--sim", "--s3", "--dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args(argv)
    if args.mode.startswith("ours"):
        import uvloop  # the worker's loop (ARQ workers run on uvloop)

        size = uvloop.run(_ours(args))
    else:
        size = _raw(args)
    if size != args.size:
        raise SystemExit(f"{args.mode} stored {size} bytes, expected {args.size}")
    print(json.dumps({"bytes": size, **args.figures}))


# --- the parent: servers, the alternation, the report --------------------------------------


@contextlib.contextmanager
def _servers(size: int, base: Path) -> Iterator[tuple[str, str, list[psutil.Process]]]:
    """The simulator serving one ``size``-byte MP4 and moto; yields (simulator URL, moto
    URL, their processes)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GOOGLE_VIDEO_SIM_TIME_SCALE": "1",
        "GOOGLE_VIDEO_SIM_MAX_VIDEO_BYTES": str(size),
    }
    sim = start_child("simulator", sim_command(port), env, base, port=port)
    moto = MotoServer(base)
    try:
        moto.start()
        if sim.pid is None or moto.pid is None:
            raise RuntimeError("the simulator or moto did not start")
        procs = [psutil.Process(sim.pid), psutil.Process(moto.pid)]
        yield f"http://127.0.0.1:{port}", moto.url, procs
    finally:
        moto.stop()
        sim.stop()


def _video_url(sim: str, size: int) -> str:
    """Submit a simulator task that finishes at once serving ``size`` bytes; its file URL."""
    headers = {"Authorization": f"Bearer {SIM_KEY}"}
    prompt = f"bench storing [sim:duration=0] [sim:size={size}]"
    answer = httpx.post(
        f"{sim}/google/v1/models/veo/videos",
        json={"model": "veo3", "prompt": prompt},
        headers=headers,
        timeout=30,
    ).json()
    task_id = answer["data"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = httpx.get(f"{sim}/google/v1/tasks/{task_id}", headers=headers, timeout=30).json()
        url = task["data"]["data"].get("video_url")
        if url:
            return str(url)
        time.sleep(0.2)
    raise RuntimeError("the simulator task did not finish")


def _measure(
    mode: str,
    url: str,
    sim: str,
    s3: str,
    directory: Path,
    size: int,
    servers: list[psutil.Process],
) -> dict[str, Any]:
    command = [PY, "-m", "bench.storing", "--child", "--mode", mode, "--url", url]
    command += ["--sim", sim, "--s3", s3, "--dir", str(directory), "--size", str(size)]
    before = [cpu_seconds([server]) for server in servers]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    sim_cpu, moto_cpu = (cpu_seconds([p]) - b for p, b in zip(servers, before, strict=True))
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    gib = figures["bytes"] / (1024 * MiB)
    figures.update(
        mode=mode,
        mib_s=figures["bytes"] / MiB / figures["seconds"],
        cpu_s_per_gib=figures["cpu_s"] / gib,
        sim_cpu_s_per_gib=sim_cpu / gib,
        moto_cpu_s_per_gib=moto_cpu / gib,
        rss_growth_mib=figures["rss_growth"] / MiB,
    )
    return figures


def _clean(s3: str, directory: Path) -> None:
    """Drop what a measurement stored, so the next starts from the same state."""
    _s3_client(s3).delete_object(Bucket=BUCKET, Key=KEY)
    shutil.rmtree(directory / "videos", ignore_errors=True)
    shutil.rmtree(directory / ".tmp", ignore_errors=True)


def run(size_mib: int = 1024, rounds: int = 2) -> dict[str, Any]:
    """Measure every mode ``rounds`` times, ours and raw alternately (the order flips each
    round); returns the runs, the best of each mode and the ratios."""
    size = size_mib * MiB
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-storing-") as tmp:
        base = Path(tmp)
        directory = base / "store"
        directory.mkdir()
        with _servers(size, base) as (sim, s3, servers):
            _s3_client(s3).create_bucket(Bucket=BUCKET)
            url = _video_url(sim, size)
            for round_ in range(rounds):
                for backend in ("s3", "local"):
                    group = [f"ours-{backend}", f"raw-{backend}"]
                    if backend == "s3":
                        group[1:1] = ["ours-s3-crc32"]
                        group.append("raw-s3-when-required")
                    for mode in group if round_ % 2 == 0 else reversed(group):
                        figures = _measure(mode, url, sim, s3, directory, size, servers)
                        figures["round"] = round_ + 1
                        runs.append(figures)
                        log(
                            f"storing {mode}: {figures['mib_s']:.0f} MiB/s,"
                            f" {figures['cpu_s_per_gib']:.2f} CPU s/GiB,"
                            f" RSS +{figures['rss_growth_mib']:.0f} MiB"
                        )
                        _clean(s3, directory)
    best = {
        mode: max((r for r in runs if r["mode"] == mode), key=lambda r: r["mib_s"])
        for mode in MODES
    }
    peak = {mode: max(r["rss_growth_mib"] for r in runs if r["mode"] == mode) for mode in MODES}
    return {
        "params": {"size_mib": size_mib, "rounds": rounds},
        "runs": runs,
        "best": best,
        "peak_rss_growth_mib": peak,
        "ratio_s3": best["ours-s3"]["mib_s"] / best["raw-s3"]["mib_s"],
        "ratio_s3_crc32": best["ours-s3-crc32"]["mib_s"] / best["raw-s3"]["mib_s"],
        "ratio_s3_like_for_like": best["ours-s3"]["mib_s"] / best["raw-s3-when-required"]["mib_s"],
        "ratio_local": best["ours-local"]["mib_s"] / best["raw-local"]["mib_s"],
        "round_ratios_s3": _round_ratios(runs, "s3"),
        "round_ratios_s3_crc32": _round_ratios(runs, "s3", "ours-s3-crc32"),
        "round_ratios_s3_like_for_like": _round_ratios(runs, "s3", raw="raw-s3-when-required"),
    }


def _round_ratios(
    runs: list[dict[str, Any]], backend: str, ours: str | None = None, raw: str | None = None
) -> list[float]:
    rounds = sorted({r["round"] for r in runs})
    speed = {(r["round"], r["mode"]): r["mib_s"] for r in runs}
    mode, reference = ours or f"ours-{backend}", raw or f"raw-{backend}"
    return [speed[(n, mode)] / speed[(n, reference)] for n in rounds]


def markdown(r: dict[str, Any]) -> str:
    """The benchmark's section of ``bench/results.md``."""
    size = r["params"]["size_mib"]
    ok_s3 = r["ratio_s3"] >= THROUGHPUT_TARGET
    ok_rss = r["peak_rss_growth_mib"]["ours-s3"] <= RSS_TARGET_MIB * size / 1024
    lines = [
        f"## Storing a {size} MiB video (bench/storing.py)",
        "",
        "Each row is one child process downloading the simulator's padded MP4 once and storing"
        " it; ours and raw alternate in each round. CPU is the child's (all threads); the"
        " simulator's and moto's CPU in the same window is beside it (same cores).",
        "",
        "| round | mode | MiB/s | CPU s/GiB | simulator / moto CPU s/GiB | peak RSS growth MiB |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for run_ in r["runs"]:
        lines.append(
            f"| {run_['round']} | {run_['mode']} | {run_['mib_s']:.1f}"
            f" | {run_['cpu_s_per_gib']:.2f}"
            f" | {run_['sim_cpu_s_per_gib']:.2f} / {run_['moto_cpu_s_per_gib']:.2f}"
            f" | {run_['rss_growth_mib']:.1f} |"
        )
    rounds = ", ".join(f"{x:.2f}" for x in r["round_ratios_s3"])
    crc32_rounds = ", ".join(f"{x:.2f}" for x in r["round_ratios_s3_crc32"])
    like_rounds = ", ".join(f"{x:.2f}" for x in r["round_ratios_s3_like_for_like"])
    ok_crc32 = r["ratio_s3_crc32"] >= THROUGHPUT_TARGET
    lines += [
        "",
        f"- **S3 (moto)**: ours / raw boto3 = **{r['ratio_s3']:.2f}x** (best of each; per round:"
        f" {rounds}); target ≥ {THROUGHPUT_TARGET}x → {'meets' if ok_s3 else '**MISSED**'}."
        f" Peak RSS growth ours {r['peak_rss_growth_mib']['ours-s3']:.0f} MiB, raw"
        f" {r['peak_rss_growth_mib']['raw-s3']:.0f} MiB; target ≤ {RSS_TARGET_MIB} MiB per GiB"
        f" → {'meets' if ok_rss else '**MISSED**'}.",
        f"- **S3 (moto), `S3_CHECKSUM_ALGORITHM=CRC32`** (`ours-s3-crc32`, the opt-in for"
        f" stores with flexible checksums): ours / raw boto3 = **{r['ratio_s3_crc32']:.2f}x**"
        f" (per round: {crc32_rounds}) → {'meets' if ok_crc32 else '**MISSED**'}. raw boto3"
        " sends CRC32 checksums by default. An upload that declares no checksum algorithm"
        " (ours by default: DESIGN.md §7, checksum headers only where required) makes moto"
        " default to a CRC64NVME FULL_OBJECT checksum and copy the whole object once more at"
        " CompleteMultipartUpload (moto's system CPU per GiB roughly doubles); AWS S3 computes"
        " its default checksum itself, at no cost to the client.",
        f"- **Like for like** (not the target's reference): ours / raw boto3 with"
        ' `request_checksum_calculation="when_required"` (checksum headers only where'
        f" required, as ours) = **{r['ratio_s3_like_for_like']:.2f}x** (per round:"
        f" {like_rounds}); raw moto CPU"
        f" {r['best']['raw-s3-when-required']['moto_cpu_s_per_gib']:.2f} s/GiB against"
        f" {r['best']['raw-s3']['moto_cpu_s_per_gib']:.2f} with CRC32.",
        f"- **Local disk**: ours / raw copy = **{r['ratio_local']:.2f}x**; peak RSS growth ours"
        f" {r['peak_rss_growth_mib']['ours-local']:.0f} MiB, raw"
        f" {r['peak_rss_growth_mib']['raw-local']:.0f} MiB. The raw copy neither hashes nor"
        " checks the MP4.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        child_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    result = run(args.size_mib, args.rounds)
    print(markdown(result))


if __name__ == "__main__":
    main()
