"""The one way a command fails: a ``CliError`` becomes one line on stderr and an exit
code (``cli.main``), never a traceback."""

from __future__ import annotations

# Exit codes: 1 the service, the database or the network said no; 2 the command line
# itself is wrong (usage, a value refused before anything was sent); 130 Ctrl-C.
FAILED = 1
USAGE = 2
INTERRUPTED = 130

MAX_LINE = 500


class CliError(Exception):
    """A failure to report as one line (``message``) with exit code ``code``."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(one_line(message))
        self.code = code


def one_line(text: str) -> str:
    """``text`` on one line (whitespace runs collapsed), at most ``MAX_LINE`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_LINE else flat[: MAX_LINE - 1] + "…"
