"""README's configuration table names every setting, and only settings that exist, and its
``make`` table every Makefile variable: the README is where an operator looks, so a new
variable without a row fails here."""

from __future__ import annotations

import re
from pathlib import Path

from schemas.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _named_in_table() -> set[str]:
    text = README.read_text()
    section = text[text.index("\n## Configuration") : text.index("\n## The simulator")]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_every_setting_has_a_row_and_every_row_a_setting() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    named = _named_in_table()
    assert sorted(settings - named) == []
    assert sorted(named - settings) == []


def test_every_make_variable_is_in_the_readme() -> None:
    makefile = (README.parent / "Makefile").read_text()
    variables = set(re.findall(r"^([A-Z_]+) \?=", makefile, re.MULTILINE)) | {"KEEP"}
    text = README.read_text()
    table = text[: text.index("\n## Quickstart")]
    named = set(re.findall(r"`([A-Z_]+)`", table))
    assert sorted(variables - named) == []
