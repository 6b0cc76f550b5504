"""The job codec: JSON on the wire, a pickle refused, and every ARQ client built with it."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest
from arq.jobs import DeserializationError, deserialize_job_raw, serialize_job, serialize_result

from core.queue_codec import dumps, loads, queue_client
from schemas.settings import Settings
from worker.options import worker_options

ROOT = Path(__file__).resolve().parents[2]


def test_a_job_round_trips_as_json() -> None:
    raw = serialize_job("poll_task", ("video_1", 3), {}, 1, 1700000000000, serializer=dumps)
    assert raw.startswith(b"{")
    assert deserialize_job_raw(raw, deserializer=loads) == (
        "poll_task",
        ["video_1", 3],
        {},
        1,
        1700000000000,
    )


def test_arguments_that_are_not_json_cannot_be_enqueued() -> None:
    with pytest.raises(TypeError):
        dumps({"a": [object()]})


def test_a_failed_job_result_is_stored_as_its_text() -> None:
    raw = serialize_result(
        "f", (), {}, 1, 0, False, RuntimeError("boom"), 0, 1, "ref", "q", "id", serializer=dumps
    )
    assert raw is not None and b'"RuntimeError: boom"' in raw


class _Trace:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("executed",))


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({"f": "submit_task", "a": [_Trace()], "k": {}, "t": 1, "et": 0}),
        b"[1, 2]",
        b'{"f": "submit_task"}',
        b"\xff\xfe",
    ],
)
def test_anything_but_a_json_job_is_a_deserialization_error(
    payload: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(DeserializationError):
        deserialize_job_raw(payload, deserializer=loads)
    assert "executed" not in capsys.readouterr().out


def test_the_worker_and_the_api_client_use_the_codec(tmp_path: Path) -> None:
    options = worker_options(Settings(environment="test", data_dir=tmp_path))
    assert (options["job_serializer"], options["job_deserializer"]) == (dumps, loads)
    client = queue_client("redis://127.0.0.1:1/0", connect_timeout=1)
    assert (client.job_serializer, client.job_deserializer) == (dumps, loads)


def _arq_clients(tree: ast.AST) -> list[ast.Call]:
    """Calls that build an ARQ client or worker: create_pool(RedisSettings…), Worker(…),
    ArqRedis(…), ArqRedis.from_url(…)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        settings_arg = bool(node.args) and "RedisSettings" in ast.unparse(node.args[0])
        if name in ("Worker", "ArqRedis", "ArqRedis.from_url") or (
            name == "create_pool" and settings_arg
        ):
            found.append(node)
    return found


def test_every_arq_client_in_the_repository_passes_the_codec() -> None:
    missing, seen = [], 0
    folders = ("service", "worker", "core", "cli", "schemas", "simulator", "tests", "bench")
    for path in (p for folder in folders for p in (ROOT / folder).rglob("*.py")):
        source = path.read_text()
        if path.name == "queue_codec.py" or not re.search(r"create_pool|Worker\(|ArqRedis", source):
            continue
        for call in _arq_clients(ast.parse(source)):
            seen += 1
            spread = [k for k in call.keywords if k.arg is None]
            # worker_options(...) holds it (the test above checks that).
            sources = [ast.unparse(k.value) for k in spread]
            if not any(s == "ARQ_CODEC" or "worker_options(" in s for s in sources):
                missing.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert seen >= 5 and not missing, missing
