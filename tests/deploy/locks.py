"""The hash-pinned lock files ``make lock`` writes (uv's ``pip compile --generate-hashes``
format), read without a resolver: what each pins, with which hashes, and why."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# A pin starts a line: "name==version" and maybe "; marker", continued with backslashes.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_VIA = re.compile(r"^\s+#\s+(?:via\s+)?(\S.*)$")


@dataclass
class Pin:
    name: str  # canonical (PEP 503)
    version: str
    hashes: list[str] = field(default_factory=list)
    # What asked for it: "google-video (pyproject.toml)" for a direct dependency.
    via: list[str] = field(default_factory=list)


def read_lock(text: str) -> dict[str, list[Pin]]:
    """Canonical name → its pins (two when a marker splits a package by Python version)."""
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    for line in text.splitlines():
        if match := _PIN.match(line):
            current = Pin(canonicalize_name(match[1]), match[2])
            pins.setdefault(current.name, []).append(current)
        elif current is not None:
            current.hashes += _HASH.findall(line)
            if (via := _VIA.match(line)) and via[1] != "via":
                current.via.append(via[1].strip())
    return pins


def disagreements(requirements: list[str], pins: dict[str, list[Pin]]) -> list[str]:
    """What in ``requirements`` (PEP 508 strings) the lock does not satisfy: a package it
    lacks, or a pinned version outside the requirement's specifier."""
    found = []
    for text in requirements:
        wanted = Requirement(text)
        name = canonicalize_name(wanted.name)
        versions = [pin.version for pin in pins.get(name, [])]
        if not versions:
            found.append(f"{wanted.name}: not in the lock")
        elif not any(wanted.specifier.contains(v, prereleases=True) for v in versions):
            found.append(f"{wanted.name}: locked {', '.join(versions)}, wanted {wanted.specifier}")
    return found


def direct(pins: dict[str, list[Pin]], source: str) -> set[str]:
    """The canonical names the lock records as asked for by ``source``."""
    return {name for name, group in pins.items() if any(source in p.via for p in group)}
