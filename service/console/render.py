"""Pages from the package's Jinja2 templates, every value autoescaped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse

_ENV = Environment(
    loader=PackageLoader("service.console", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | int | float | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` UTC (unix seconds too); ``""`` for None."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _size(value: int | None) -> str:
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(value)


_ENV.filters["when"] = _when
_ENV.filters["size"] = _size


def page(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    """``template`` rendered with ``values``, plus ``csrf`` (the session's token, for
    forms) and ``logged_in``."""
    session = getattr(request.state, "console_session", None)
    html = _ENV.get_template(template).render(
        csrf=session.csrf if session is not None else "",
        logged_in=session is not None and session.key_id is not None,
        **values,
    )
    return HTMLResponse(html, status_code=status)
