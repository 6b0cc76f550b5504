"""Checking an upstream configuration without creating a paid job.

Each provider proves its own key (`Upstream.check`: the gateway queries a task id that
cannot exist); this module turns what that check raised into a `ConnectionReport` the
same way for every provider. The API runs it (``POST /v1/admin/config/test``) through the
function the command line hands to `service.app.create_app`: the API never imports the
worker, the command line knows both.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from schemas.config import CheckResult, ConnectionReport
from worker.upstream import registry
from worker.upstream.errors import OperatorProblemError, UpstreamError

DETAIL_LIMIT = 300

_log = structlog.get_logger(__name__)


async def check_connection(
    kind: str, base_url: str, api_key: str, *, seconds: float
) -> ConnectionReport:
    """Check `kind`'s upstream at `base_url` with `api_key`, within `seconds`.

    Never raises for what the upstream did (that is the report); raises ValueError /
    NotImplementedError for a kind nothing serves (as `registry.provider`). The key is
    neither logged nor found in the report's detail.
    """
    client = registry.make_upstream(kind, base_url, api_key, read_timeout=seconds)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            await client.check()
    except TimeoutError:
        report = _report(started, "unreachable", None, f"No answer within {seconds:g} s.")
    except UpstreamError as error:
        report = _report(started, _result(error), error.status, _detail(error, api_key))
    else:
        report = _report(started, "key_accepted", None, "The upstream accepted the key.")
    finally:
        await client.aclose()
    _log.info(
        "upstream.config_checked",
        provider=kind,
        result=report.result,
        status=report.status,
        latency_ms=report.latency_ms,
    )
    return report


def _result(error: UpstreamError) -> CheckResult:
    if isinstance(error, OperatorProblemError) and error.cause in ("auth", "quota"):
        return "key_rejected"
    if error.status is None:
        return "unreachable"  # no answer: refused, reset, DNS, a read timeout
    return "unexpected"


def _detail(error: UpstreamError, api_key: str) -> str:
    text = str(error)
    if api_key:
        # Some gateways quote the key they refused.
        text = text.replace(api_key, "****")
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def _report(
    started: float, result: CheckResult, status: int | None, detail: str
) -> ConnectionReport:
    latency = round((time.perf_counter() - started) * 1000)
    return ConnectionReport(result=result, latency_ms=latency, status=status, detail=detail)
