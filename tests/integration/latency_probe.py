"""``python -m tests.integration.latency_probe URL KEY COUNT GAP``: COUNT sequential
``GET /v1/models`` on one keep-alive connection, GAP seconds apart; prints each one's
seconds as JSON. A process of its own, so what it measures is the server, not a test's
busy event loop."""

from __future__ import annotations

import http.client
import json
import sys
import time
from urllib.parse import urlsplit


def main(url: str, key: str, count: int, gap: float) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    found = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        found.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"GET /v1/models answered {response.status}")
        time.sleep(gap)
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
