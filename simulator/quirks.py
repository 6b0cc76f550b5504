"""Quirks: settings that make every task behave like some real gateway.

``directives`` is a string of ``[sim:...]`` directives (``simulator.directives``) applied
to every submit before the prompt's own, so a prompt can still override each of them; the
text between directives is dropped. ``key_exhausted`` makes both gateway routes answer 401
with new-api's "token quota exhausted" error (corpus p19) while it is on, as when the
operator's key runs dry: the tasks already submitted keep running and finish on time,
only their queries are refused, and polls of existing tasks still count in
``/_sim/stats``.

Set at start-up with ``--quirks`` / ``GOOGLE_VIDEO_SIM_QUIRKS`` (directives only), changed
at run time with ``POST /_sim/config`` (a JSON object with either key; unknown keys are a
400), read with ``GET /_sim/config``; ``POST /_sim/reset`` restores the start-up quirks.
"""

from dataclasses import dataclass, replace
from typing import Any

from simulator.directives import DIRECTIVE_RE, parse_script


@dataclass(frozen=True, slots=True)
class Quirks:
    directives: str = ""
    key_exhausted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"quirks": self.directives, "key_exhausted": self.key_exhausted}


def normalise_directives(text: str) -> str:
    """Only the directives of ``text``, space-separated; raises DirectiveError when one is
    unknown or malformed."""
    parse_script(text)
    return " ".join(match.group(0) for match in DIRECTIVE_RE.finditer(text))


def patched(quirks: Quirks, body: object) -> Quirks:
    """``quirks`` changed by a ``POST /_sim/config`` body; raises ValueError on a bad one."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(body) - {"quirks", "key_exhausted"}
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    if "quirks" in body:
        if not isinstance(body["quirks"], str):
            raise ValueError("quirks must be a string of [sim:...] directives")
        quirks = replace(quirks, directives=normalise_directives(body["quirks"]))
    if "key_exhausted" in body:
        if not isinstance(body["key_exhausted"], bool):
            raise ValueError("key_exhausted must be a boolean")
        quirks = replace(quirks, key_exhausted=body["key_exhausted"])
    return quirks
