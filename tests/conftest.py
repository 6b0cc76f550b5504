"""Session-wide real services, started lazily on first use.

Set GOOGLE_VIDEO_TEST_DATABASE_URL, GOOGLE_VIDEO_TEST_REDIS_URL or
GOOGLE_VIDEO_TEST_S3_ENDPOINT to use an existing service instead of a private process;
tests that need to control the process itself (restart, kill) are then skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.nodeid import NodeId

from tests.services import MotoServer, PostgresServer, RedisServer

DATABASE_URL_ENV = "GOOGLE_VIDEO_TEST_DATABASE_URL"
REDIS_URL_ENV = "GOOGLE_VIDEO_TEST_REDIS_URL"
S3_ENDPOINT_ENV = "GOOGLE_VIDEO_TEST_S3_ENDPOINT"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the modules that hold a ``slow`` test first, then the modules that share a
    module-scoped fixture, each kept whole, in collection order.

    ``make test`` hands tests to its xdist workers one at a time in this order
    (``--dist loadgroup --no-loadscope-reorder``): a minute-long test handed out near the
    end would leave the other worker idle while it runs.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    shared = {item.path for item in items if _module_fixtures(item)}
    # stable: slow modules, then the other grouped ones, then the rest
    items.sort(key=lambda item: (item.path not in slow, item.path not in shared))
    if getattr(config.option, "loadgroup", False):  # set by xdist on its workers
        for item in items:
            _group(item)


def _group(item: pytest.Item) -> None:
    """Make ``item`` one work unit with the rest of its group, as ``--dist loadgroup``
    means to: its ``xdist_group`` marker, else its module if the module's tests share a
    module-scoped fixture (started once, not once per worker).

    xdist marks a group by suffixing the test's id with ``@name``, but under pytest 9.2
    it still writes ``item._nodeid``, which pytest no longer reads (the id is ``_id``),
    so the marker alone has no effect; this writes the id pytest reads.
    """
    names = {
        str(m.args[0] if m.args else m.kwargs.get("name", "default"))
        for m in item.iter_markers("xdist_group")
    }
    if not names and _module_fixtures(item):
        names = {item.nodeid.split("::", 1)[0]}
    suffix = "@" + "_".join(sorted(names))
    if names and not item.nodeid.endswith(suffix):  # not if a later xdist does it itself
        item._id = NodeId.parse(item.nodeid + suffix)


def _module_fixtures(item: pytest.Item) -> list[str]:
    """The module-scoped fixtures ``item`` uses (a private server, a stack, a file)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    return [
        name for name, defs in info.name2fixturedefs.items() if defs and defs[-1].scope == "module"
    ]


def _skip_if_external(env: str) -> None:
    if os.environ.get(env):
        pytest.skip(f"{env} points at an external service; this test needs a private one")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    _skip_if_external(DATABASE_URL_ENV)
    # Not tmp_path_factory: pytest's tmp dirs are 0700, and the server runs as `postgres`.
    base_dir = Path(tempfile.mkdtemp(prefix="google-video-test-"))
    base_dir.chmod(0o755)
    try:
        with PostgresServer(base_dir) as server:
            yield server
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    _skip_if_external(REDIS_URL_ENV)
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    _skip_if_external(S3_ENDPOINT_ENV)
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


def _external_or(request: pytest.FixtureRequest, env: str, fixture: str) -> str:
    external = os.environ.get(env)
    if external:
        return external
    server: PostgresServer | RedisServer | MotoServer = request.getfixturevalue(fixture)
    return server.url


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest) -> str:
    """``postgresql+asyncpg://…`` URL of the test database."""
    return _external_or(request, DATABASE_URL_ENV, "postgres")


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    return _external_or(request, REDIS_URL_ENV, "redis_server")


@pytest.fixture(scope="session")
def s3_endpoint(request: pytest.FixtureRequest) -> str:
    return _external_or(request, S3_ENDPOINT_ENV, "moto")
