"""What a command prints: the raw JSON with ``--json`` (for scripts), otherwise tables
and lines for people (``rich``). Results go to stdout, progress and failures to stderr.

Off a terminal, tables are laid out at their natural width (no wrapping at 80 columns),
so a piped table keeps one row per line; values are never read as rich markup."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Wide enough that no table off a terminal is wrapped or cut.
PIPE_WIDTH = 100_000


def console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(
        file=stream,
        width=None if terminal else PIPE_WIDTH,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=not terminal,
    )


class Output:
    """Prints one command's result, as JSON (``as_json``) or for people."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.out = console()
        self.err = console(stderr=True)

    def json(self, value: Any) -> None:
        """``value`` as indented JSON on stdout (the API's answer, unchanged)."""
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def line(self, text: str) -> None:
        """A line as it is (never wrapped: it may hold a key to copy)."""
        self.out.print(Text(text), soft_wrap=True)

    def note(self, text: str) -> None:
        """A hint for people on stderr (never mixed into the result)."""
        self.err.print(Text(text, style="dim"), soft_wrap=True)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, no_wrap=True, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        if self.out.is_terminal:
            self.out.print(table)
            return
        with self.out.capture() as captured:
            self.out.print(table)
        # Off a terminal: no padding after the last column of each line.
        lines = captured.get().splitlines()
        sys.stdout.write("".join(line.rstrip() + "\n" for line in lines))
        sys.stdout.flush()

    def fields(self, pairs: Iterable[tuple[str, str]]) -> None:
        """``name  value`` lines, the names aligned."""
        self.table(("field", "value"), pairs)


def when(unix: int | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS`` (UTC), ``-`` for none."""
    if unix is None:
        return "-"
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S")


def text(value: Any) -> str:
    """A JSON value as a cell: ``-`` for null, compact JSON for lists and objects."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def size(count: int | None) -> str:
    """Bytes for people: ``1.2 MB``."""
    if count is None:
        return "-"
    amount = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{count} B"
