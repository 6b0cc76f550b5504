"""Logging set-up: one stream, one format, for our lines and every library's.

structlog events and stdlib ``logging`` records (ARQ's, Alembic's, uvicorn's, SQLAlchemy's,
httpx's, botocore's, ``warnings`` …) all end in one handler on stderr whose
``ProcessorFormatter`` adds the same fields (the bound context: ``request_id``, ``task_id``,
``job`` …; ``level``, ``logger``, ``timestamp``) and renders them:

- ``json``: one JSON object per line; an exception is the ``exception`` field of its line
  (the formatted traceback as one string), never lines of its own;
- ``console``: aligned text for people;
- ``auto`` (the default): ``json`` unless the stream is a terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

# Libraries whose DEBUG (or, for SQLAlchemy, INFO: every statement) would drown ours at
# LOG_LEVEL=DEBUG; their warnings still show. httpx logs every request at INFO.
_FLOORS = {
    "httpx": logging.WARNING,
    "httpcore": logging.INFO,
    "hpack": logging.INFO,
    "aiosqlite": logging.INFO,
    "asyncio": logging.INFO,
    "botocore": logging.INFO,
    "boto3": logging.INFO,
    "s3transfer": logging.INFO,
    "urllib3": logging.INFO,
    "multipart": logging.INFO,
    "python_multipart": logging.INFO,
    "sqlalchemy": logging.WARNING,
}


def _trimmed(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """A library's message without its padding (ARQ's ``"%6.2fs → …"``, a warning's
    trailing newline)."""
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = event.strip()
    return event_dict


# First in a JSON line, for people reading it raw (``kubectl logs``); the rest as bound.
_LEADING = ("timestamp", "level", "logger", "event")


def _leading(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    first = {key: event_dict.pop(key) for key in _LEADING if key in event_dict}
    return {**first, **event_dict}


# What every line gets, whoever emitted it.
_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def renders_json(fmt: str, stream: TextIO) -> bool:
    """Whether ``fmt`` (``json``, ``console`` or ``auto``) means JSON on ``stream``."""
    if fmt == "auto":
        isatty = getattr(stream, "isatty", None)
        return not (callable(isatty) and isatty())
    return fmt == "json"


def _renderers(json: bool) -> list[structlog.types.Processor]:
    if json:
        return [structlog.processors.format_exc_info, _leading, structlog.processors.JSONRenderer()]
    # Plain tracebacks: with rich installed, structlog's default prints every frame's
    # local variables, which hold keys, settings and prompts.
    return [
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    ]


def formatter(json: bool) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the libraries' stdlib records: the fields and rendering of our
    own events."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_trimmed, *_SHARED],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(json)],
    )


class _Writer(structlog.WriteLogger):
    """structlog's line writer with the name it was asked for (the ``logger`` field)."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


# ARQ's per-job start and end lines ("→", "←") of a poll hop: two INFO lines per hop, the
# hot path of a worker tracking thousands of tasks. Failures (WARNING and up), retries and
# the other jobs' lines still show; LOG_LEVEL=DEBUG shows the hops' lines again.
_QUIET_JOB = ":poll_task"
_PER_JOB_MARKS = ("→", "←")


class _QuietHops(logging.Filter):
    """Drops arq's INFO start/end record of a poll hop (``ref`` = ``<job id>:poll_task``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or len(record.args or ()) < 2:
            return True
        ref = record.args[1]  # type: ignore[index]
        if not (isinstance(ref, str) and ref.endswith(_QUIET_JOB)):
            return True
        msg = record.msg if isinstance(record.msg, str) else ""
        return not any(mark in msg for mark in _PER_JOB_MARKS)


def configure(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log line of the process to ``stream`` (stderr) in ``fmt``, at ``level``
    (a stdlib level name) and above. Alembic's INFO chatter shows only at DEBUG."""
    out = stream if stream is not None else sys.stderr
    number = logging.getLevelNamesMapping()[level.upper()]
    json = renders_json(fmt, out)
    # Our events are rendered and written directly, at a third of the cost of a trip
    # through stdlib logging; the libraries' records through the handler below.
    structlog.configure(
        processors=[*_SHARED, *_renderers(json)],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=lambda *args: _Writer(out, str(args[0]) if args else ""),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(json))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    logging.captureWarnings(True)  # `warnings` (SQLAlchemy's among them) as records too
    for name, floor in _FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, number))
    arq = logging.getLogger("arq.worker")
    for quiet in [f for f in arq.filters if isinstance(f, _QuietHops)]:
        arq.removeFilter(quiet)
    if number > logging.DEBUG:
        arq.addFilter(_QuietHops())
    # Alembic announces every plugin and step at INFO: quiet unless LOG_LEVEL=DEBUG asks.
    logging.getLogger("alembic").setLevel(logging.WARNING if number > logging.DEBUG else number)
