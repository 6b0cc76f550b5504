"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GOOGLE_VIDEO_* from the outer environment, and a private working directory (no
    ``.env`` is read): what a settings test builds comes from the test alone. Modules of
    settings tests use it for every test (``pytestmark``)."""
    for name in list(os.environ):
        if name.startswith("GOOGLE_VIDEO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
