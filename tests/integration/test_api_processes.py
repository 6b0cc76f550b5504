"""``google-video api --workers 2``: two processes on one port, and ``/metrics`` counts
every request whichever process served it or the scrape (prometheus-client's
multiprocess mode, set up by ``core.metrics.prepare_multiprocess``)."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.supervise import Child, free_port, port_open

HEALTHZ = re.compile(
    r'^google_video_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$',
    re.MULTILINE,
)


@pytest.fixture
def two_processes(migrated, pg_url, redis_url, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale from an earlier run")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_VIDEO_")},
        "GOOGLE_VIDEO_ENVIRONMENT": "test",
        "GOOGLE_VIDEO_DATABASE_URL": pg_url,
        "GOOGLE_VIDEO_REDIS_URL": redis_url,
        "GOOGLE_VIDEO_STORAGE_URL": (tmp_path / "storage").as_uri(),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    command = [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", "2"]
    api = Child("api-2", command, env=env, output=tmp_path / "api.log")
    api.start(functools.partial(port_open, "127.0.0.1", port), timeout=30)
    try:
        yield f"http://127.0.0.1:{port}", metrics_dir
    finally:
        api.stop(grace=20)


def test_metrics_count_the_requests_of_every_process(two_processes) -> None:
    url, metrics_dir = two_processes
    for _ in range(60):  # a new connection each: the kernel spreads them over the processes
        assert httpx.get(f"{url}/healthz").status_code == 200
    counts = set()
    for _ in range(6):
        scrape = httpx.get(f"{url}/metrics")
        assert scrape.status_code == 200
        counts.add(float(HEALTHZ.search(scrape.text).group(1)))  # type: ignore[union-attr]
    assert counts == {60.0}
    writers = {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}
    assert len(writers) >= 2 and "1" not in writers  # both processes counted; stale file gone
