"""The ``images`` of a submit: decoded data URIs, or URLs the simulator never fetches."""

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_DATA_URI = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.S
)


@dataclass(frozen=True, slots=True)
class InputImage:
    """One entry of ``images``: ``data`` holds the decoded bytes of a data URI, ``None``
    for a URL (the simulator fetches nothing) or for a data URI that does not decode."""

    source: str  # "data" or "url"
    mime: str
    data: bytes | None
    url: str = ""
    error: str = ""

    @property
    def label(self) -> str:
        """What a placeholder for this image says: the URL's host, or why it is missing."""
        if self.source == "url":
            return f"image from {urlsplit(self.url).hostname or self.url[:40]}"
        return self.error or f"{self.mime} image"

    def describe(self) -> dict[str, Any]:
        """The image as ``/_sim/tasks`` reports it: no bytes, only their count, mime and sha256."""
        if self.source == "url":
            return {"source": "url", "url": self.url}
        described: dict[str, Any] = {"source": "data", "mime": self.mime}
        if self.data is not None:
            described["bytes"] = len(self.data)
            described["sha256"] = hashlib.sha256(self.data).hexdigest()
        if self.error:
            described["error"] = self.error
        return described


def read_image(text: str) -> InputImage:
    """A ``data:`` URI (base64 or percent-free plain) decoded, anything else kept as a URL."""
    match = _DATA_URI.fullmatch(text.strip())
    if match is None:
        return InputImage(source="url", mime="", data=None, url=text)
    mime = (match.group("mime") or "text/plain").lower()
    if ";base64" not in match.group("params").lower():
        return InputImage(source="data", mime=mime, data=match.group("data").encode())
    try:
        data = base64.b64decode("".join(match.group("data").split()), validate=True)
    except (binascii.Error, ValueError):
        return InputImage(source="data", mime=mime, data=None, error="data URI is not base64")
    return InputImage(source="data", mime=mime, data=data)
