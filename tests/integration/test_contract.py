"""The machine-readable contract: ``/openapi.json`` is valid OpenAPI 3.1 and names every
route (and only those), and schemathesis fuzzes every operation of the real API process
on PostgreSQL, as an admin and as a client: no 5xx, every answer as documented.

``make test`` gives the fuzzer a short budget; ``make fuzz`` a long one
(``GOOGLE_VIDEO_FUZZ_SECONDS``, ``GOOGLE_VIDEO_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Route

from core import apikeys
from core.bootstrap import prepare
from schemas.settings import Settings
from schemas.status import Role
from service.app import OPERATIONS, create_app
from tests.integration.images import PNG
from tests.integration.test_openai_sdk import ADMIN_KEY, Api, api_env, start_api

# Per run (three runs): the budget of the whole fuzz in `make test` is about 55 s.
FUZZ_SECONDS = float(os.environ.get("GOOGLE_VIDEO_FUZZ_SECONDS", "12"))
FUZZ_EXAMPLES = int(os.environ.get("GOOGLE_VIDEO_FUZZ_EXAMPLES", "25"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# positive_data_acceptance would need every cross-field rule in the schema (a size the
# chosen model cannot make, credits, the concurrency limit): those are documented 4xx.
EXCLUDED_CHECKS = "positive_data_acceptance"


def _document() -> dict[str, Any]:
    return dict(create_app(Settings(environment="test")).state.openapi)


def test_document_is_valid_openapi_3_1() -> None:
    document = _document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented_and_every_operation_is_routed() -> None:
    app = create_app(Settings(environment="test"))
    routed = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        # The operator console's entry (HTML for browsers) is not an API operation.
        if method != "HEAD" and route.path != "/console"
    }
    documented = {
        (method.upper(), path)
        for path, item in app.state.openapi["paths"].items()
        for method in item
    }
    assert routed == documented
    assert {(op.method, op.path) for op in OPERATIONS} == documented


def test_every_operation_documents_its_problems_and_request_id() -> None:
    for path, item in _document()["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "500" in responses and "503" in responses, (method, path)
            for status, response in responses.items():
                assert "X-Request-ID" in response["headers"], (method, path, status)
            if operation["security"]:
                assert "401" in responses, (method, path)


def test_the_create_documents_json_and_multipart_bodies() -> None:
    document = _document()
    create = document["paths"]["/v1/videos"]["post"]
    content = create["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    form = document["components"]["schemas"]["VideoCreateForm"]
    assert form["properties"]["input_reference"]["items"]["format"] == "binary"
    names = {p["name"] for p in create["parameters"]}
    assert "Idempotency-Key" in names


def test_the_create_and_the_catalogue_document_one_pattern_per_kind() -> None:
    schemas = _document()["components"]["schemas"]
    create, form = schemas["VideoCreate"]["properties"], schemas["VideoCreateForm"]["properties"]
    entry = schemas["ModelSpec"]["properties"]
    for field in ("seconds", "size", "aspect_ratio"):
        asked = create[field]["anyOf"][0]
        pattern = asked["pattern"]
        assert "enum" not in asked and form[field]["pattern"] == pattern, field
        assert all(re.fullmatch(pattern, value) for value in create[field]["examples"]), field
    assert (
        entry["aspect_ratios"]["items"]["pattern"] == create["aspect_ratio"]["anyOf"][0]["pattern"]
    )
    assert entry["durations"]["items"] == {"type": "integer", "minimum": 1, "maximum": 600}
    seconds = create["seconds"]["anyOf"][0]["pattern"]
    assert [n for n in range(-5, 1000) if re.fullmatch(seconds, str(n))] == list(range(1, 601))


# --- against the real process ----------------------------------------------------------


@pytest.fixture(scope="module")
def contract_api(
    migrated: AsyncEngine, pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("contract-api")
    yield from start_api(api_env(pg_url, redis_url, root / "storage"), root / "api.log")


@pytest.fixture
async def api(contract_api: Api, engine: AsyncEngine, pg_url: str, tmp_path: Path) -> Api:
    settings = Settings(
        environment="test", data_dir=tmp_path, database_url=pg_url, admin_key=ADMIN_KEY
    )
    await prepare(settings, engine)
    # The process caches the runtime config for a second, and the admin-config fuzz run
    # leaves `enabled: false` behind: an empty PUT makes it take the fresh row now.
    async with httpx.AsyncClient(
        base_url=contract_api.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as admin:
        put = await admin.put("/v1/admin/config", json={})
    assert put.status_code == 200 and put.json()["enabled"] is True, put.text
    return contract_api


async def _client_key(engine: AsyncEngine, client_id: str) -> str:
    async with engine.begin() as conn:
        _, key = await apikeys.create_key(
            conn, client_id=client_id, name=client_id, role=Role.CLIENT
        )
    return key


def _fuzz(
    api: Api, key: str, report: Path, seconds: float, selection: list[str], phases: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{api.base_url}/openapi.json",
        "--url",
        api.base_url,
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--max-time",
        str(int(seconds)),
        "--phases",
        phases,
        # One worker: with threads, CPython 3.11's ast.parse (hypothesis describing a
        # lambda) can fail with "AST constructor recursion depth mismatch".
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
        "--seed",
        os.environ.get("GOOGLE_VIDEO_FUZZ_SEED", "20261129"),
        "--report",
        "junit",
        "--report-dir",
        str(report),
        "--no-color",
        *selection,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    # Run from the report's folder: schemathesis keeps a cache in its working directory.
    report.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=report,
        timeout=seconds + 120,
        check=False,
    )


FUZZ_LIMITS = {
    "client_requests_per_minute": 1_000_000,
    "user_creates_per_minute": 1_000_000,
    "failed_auth_per_minute_per_address": 1_000_000,
}
# The admin's config changes (``enabled: false`` answers 503 to every later create, by
# design) are fuzzed in a run of their own.
CONFIG_PUT = "admin.put"
# Stateful: follows the document's links (a created video or endpoint, then each
# operation on it); the config run has no links to follow.
ALL_PHASES = "examples,coverage,fuzzing,stateful"
RUNS = {
    "admin": (["--exclude-operation-id", CONFIG_PUT], 1.0, ALL_PHASES),
    "admin-config": (["--include-operation-id", CONFIG_PUT], 0.5, "examples,coverage,fuzzing"),
    "client": ([], 1.0, ALL_PHASES),
}


@pytest.mark.slow
@pytest.mark.parametrize("run", list(RUNS))
async def test_schemathesis_finds_nothing(api: Api, engine: AsyncEngine, tmp_path: Path, run):
    selection, share, phases = RUNS[run]
    role = "client" if run == "client" else "admin"
    key = ADMIN_KEY if role == "admin" else await _client_key(engine, "fuzzer")
    api.grant("admin", 100_000)
    with api.http() as admin:
        # One fuzzer at hundreds of requests a second: the limits (tested in test_limits*)
        # would answer most of its requests with a documented 429 and explore nothing.
        admin.put("/v1/admin/config", json=FUZZ_LIMITS).raise_for_status()
        admin.post(
            "/v1/credits/fuzzer/grants",
            params={"client": "fuzzer"},
            json={"amount": 100_000, "reason": "fuzz"},
        )
    started = time.monotonic()
    result = _fuzz(api, key, tmp_path / "report", FUZZ_SECONDS * share, selection, phases)
    elapsed = time.monotonic() - started
    print(f"schemathesis {run}: {elapsed:.1f} s\n{result.stdout[-6000:]}")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
    with api.http() as admin:
        assert admin.get("/readyz").status_code == 200


# --- the HTTP layer of the real server -------------------------------------------------


def _raw(api: Api, payload: bytes, *, read: bool = True) -> bytes:
    host, port = api.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(payload)
        if not read:
            return b""
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
            if b"\r\n0\r\n\r\n" in data or len(b"".join(chunks)) > 1 << 20:
                break
        return b"".join(chunks)


def test_chunked_multipart_create_on_the_real_server(api: Api) -> None:
    api.grant("admin", 1000)
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na kite\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
            "veo3-pro-frames\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="input_reference";'
            ' filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + PNG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    chunked = b"".join(
        f"{len(body[i : i + 100]):x}\r\n".encode() + body[i : i + 100] + b"\r\n"
        for i in range(0, len(body), 100)
    )
    request = (
        b"POST /v1/videos HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + f"Authorization: Bearer {ADMIN_KEY}\r\n".encode()
        + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunked
        + b"0\r\n\r\n"
    )
    answer = _raw(api, request)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:600]
    assert b'"task_type":"image_to_video"' in answer


def test_a_client_that_hangs_up_mid_body_is_one_log_line(api: Api) -> None:
    log_path = Path(api.proc.output) if api.proc.output else None
    assert log_path is not None
    before = log_path.read_text(errors="replace")
    for _ in range(20):
        _raw(
            api,
            b"POST /v1/videos HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {ADMIN_KEY}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            + b'{"prompt": "half a bo',
            read=False,
        )
    hung_up = '"status": 499'  # the access-log line of a request nobody was left to answer
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = log_path.read_text(errors="replace")[len(before) :]
        if new.count(hung_up) >= 20:
            break
        time.sleep(0.1)
    assert new.count(hung_up) == 20, new[-3000:]
    assert "Traceback" not in new and "unhandled_error" not in new, new[-3000:]
    assert len(new.splitlines()) <= 25, new[-3000:]


def test_405_and_404_from_the_real_server(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as anon:
        response = anon.request("PATCH", "/v1/videos")
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
        missing = anon.get("/v1/no/such/thing")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert missing.headers["x-request-id"]


async def test_docs_page_renders_offline() -> None:
    app = create_app(Settings(environment="test"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
        page = await anon.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "http" not in page.text  # nothing fetched from elsewhere
        assert "validatorUrl: null" in page.text  # else the spec's URL goes to swagger.io
        for asset, media in [
            ("/docs/swagger-ui-bundle.js", "application/javascript"),
            ("/docs/swagger-ui.css", "text/css"),
        ]:
            response = await anon.get(asset)
            assert response.status_code == 200 and response.headers["content-type"].startswith(
                media
            )
            assert len(response.content) > 10_000
        spec = await anon.get("/openapi.json")
        assert spec.json()["openapi"] == "3.1.0"
