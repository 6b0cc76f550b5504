"""ARQ worker options: typos fail at start-up, every job has a finite timeout."""

from __future__ import annotations

from pathlib import Path

import pytest
from arq.cron import CronJob
from arq.worker import Function, Worker

from core import queue as jobs
from schemas.settings import Settings
from worker.options import WORKER_OPTIONS, InvalidWorkerSettings, validated, worker_options


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        redis_url="redis://127.0.0.1:6390/2",
        reconcile_interval_seconds=5,
        download_max_tries=4,
        worker_max_jobs=37,
        worker_drain_seconds=12.5,
    )


def _functions(options: dict[str, object]) -> dict[str, Function]:
    functions = options["functions"]
    assert isinstance(functions, list)
    return {f.name: f for f in functions}


@pytest.mark.parametrize("typo", ["max_job", "job_timeout_s", "health_check_intervall", "cron"])
def test_misspelled_option_raises_invalid_worker_settings(typo: str) -> None:
    with pytest.raises(InvalidWorkerSettings, match=typo):
        validated({"max_jobs": 10, typo: 1})


def test_valid_options_are_returned_unchanged() -> None:
    options = {"max_jobs": 10, "poll_delay": 0.5}
    assert validated(options) is options


def test_known_options_come_from_arq_worker_signature() -> None:
    assert {"functions", "cron_jobs", "job_completion_wait", "max_jobs"} <= WORKER_OPTIONS
    assert "self" not in WORKER_OPTIONS


def test_worker_options_pass_validation(settings: Settings) -> None:
    options = worker_options(settings)
    assert set(options) <= WORKER_OPTIONS
    assert validated(options) is options


def test_worker_options_register_every_job_function_by_name(settings: Settings) -> None:
    expected = {jobs.SUBMIT, jobs.POLL, jobs.STORE, jobs.DELIVER, jobs.PURGE_VIDEO}
    assert set(_functions(worker_options(settings))) == expected


def test_every_job_function_has_a_finite_timeout(settings: Settings) -> None:
    for name, function in _functions(worker_options(settings)).items():
        assert function.timeout_s is not None, name
        assert 0 < function.timeout_s <= 3600, name
        assert function.max_tries is not None and function.max_tries >= 1, name


def test_store_retries_follow_download_max_tries(settings: Settings) -> None:
    assert _functions(worker_options(settings))[jobs.STORE].max_tries == 5


def _crons(settings: Settings) -> dict[str, CronJob]:
    crons = worker_options(settings)["cron_jobs"]
    assert isinstance(crons, list) and all(isinstance(c, CronJob) for c in crons)
    return {c.name: c for c in crons}


def test_idempotency_purge_runs_hourly_in_one_replica(settings: Settings) -> None:
    cron = _crons(settings)[jobs.PURGE_IDEMPOTENCY]
    assert (cron.minute, cron.second, cron.unique) == (17, 0, True)


def test_upload_purge_runs_every_five_minutes_in_one_replica(settings: Settings) -> None:
    cron = _crons(settings)[jobs.PURGE_UPLOADS]
    assert (cron.minute, cron.second, cron.unique) == (set(range(2, 60, 5)), 30, True)


def test_activity_purge_runs_hourly_in_one_replica(settings: Settings) -> None:
    cron = _crons(settings)[jobs.PURGE_ACTIVITY]
    assert (cron.minute, cron.second, cron.unique) == (47, 0, True)


def test_reconcile_cron_runs_at_startup_every_interval(settings: Settings) -> None:
    cron = _crons(settings)[jobs.RECONCILE]
    assert cron.run_at_startup is True
    assert cron.second == set(range(0, 60, 5))
    assert cron.timeout_s is not None and cron.timeout_s > 0
    # Every replica runs it: a unique cron would be skipped while another replica holds it.
    assert cron.unique is False


def test_worker_options_take_limits_from_settings(settings: Settings) -> None:
    options = worker_options(settings)
    assert options["max_jobs"] == 37
    assert options["job_completion_wait"] == 12
    assert options["keep_result"] == 0
    assert options["ctx"] == {"settings": settings}
    redis = options["redis_settings"]
    assert (redis.host, redis.port, redis.database) == ("127.0.0.1", 6390, 2)


async def test_arq_worker_accepts_the_options(settings: Settings) -> None:
    """Beyond the names: arq itself builds a worker from them (no Redis needed yet)."""
    worker = Worker(**{**worker_options(settings), "handle_signals": False})
    assert set(worker.functions) == {
        jobs.SUBMIT,
        jobs.POLL,
        jobs.STORE,
        jobs.DELIVER,
        jobs.PURGE_VIDEO,
        jobs.RECONCILE,
        jobs.PURGE_IDEMPOTENCY,
        jobs.PURGE_UPLOADS,
        jobs.PURGE_ACTIVITY,
    }
