"""Reading what moves around in providers' JSON answers: the video URL, the safety-filter
signs. Gateways and their versions put the same facts in different places (README,
"Upstream behaviour"); a provider's protocol module looks in its known places first and
then asks here, so a finished, paid video is never lost because its URL moved.

Pure functions over parsed JSON; bounded in depth and in the number of nodes visited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

_MAX_DEPTH = 12
_MAX_NODES = 2000
_VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpeg", ".mpg", ".3gp")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".svg", ".ico", ".avif")
# Keys whose URLs are never the result: our own callback, the inputs we sent (echoed
# back), and pictures about the video.
_NOT_THE_VIDEO = (
    "notify",
    "callback",
    "webhook",
    "hook",
    "image",
    "thumb",
    "cover",
    "poster",
    "frame",
    "prompt",
    "input",
    "reference",
    "request",
    "avatar",
    "icon",
    "logo",
)
_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>()\[\]{}]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?。，；"  # noqa: RUF001 -- punctuation that ends a sentence, not a URL
_FILTER_COUNTS = ("raimediafilteredcount",)
_FILTER_REASONS = ("raimediafilteredreasons",)


def as_url(value: object) -> str | None:
    """`value` as an absolute http(s) URL, or None.

    A string must be a URL as a whole (surrounding blanks aside); a list gives its first
    element's URL, an object its ``url`` / ``video_url`` / ``uri`` / ``href``.
    """
    if isinstance(value, list):
        return as_url(value[0]) if value else None
    if isinstance(value, dict):
        for key in ("url", "video_url", "videoUrl", "uri", "href"):
            found = as_url(value.get(key))
            if found:
                return found
        return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or any(ch.isspace() for ch in text) or len(text) > 8192:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text


def first_video_url(*candidates: object) -> str | None:
    """The first candidate (in the order given) that reads as a URL (see `as_url`) and
    can be a video: not an image file, not a site's root page."""
    for candidate in candidates:
        found = as_url(candidate)
        if found and _rank("video", found) is not None:
            return found
    return None


def find_video_url(answer: object) -> str | None:
    """Any http(s) URL in `answer` that can be the video, best first.

    Skips keys that name something else (callbacks, input images, thumbnails) and URLs of
    images. A URL that looks like a video file (by its path, or a key that says "video")
    wins over one that does not; a URL inside a longer text counts only when it looks like
    a video file. Among equals, the first in document order.
    """
    best: tuple[int, str] | None = None
    for path, text in _strings(answer):
        for rank, url in _urls_in(path, text):
            if best is None or rank < best[0]:
                best = (rank, url)
            if rank == 0:
                return url
    return best[1] if best else None


def safety_filtered(answer: object) -> tuple[bool, str | None]:
    """Whether `answer` says a safety filter removed the video, and its reasons if given.

    The signs are Google's: ``raiMediaFilteredCount`` > 0 or a non-empty
    ``raiMediaFilteredReasons`` anywhere in the answer (any case, snake_case too), as
    gateways pass them on from the Gemini API.
    """
    filtered = False
    reasons: list[str] = []
    for path, value in _items(answer):
        name = _normal(path[-1]) if path else ""
        if name in _FILTER_COUNTS and _positive(value):
            filtered = True
        elif name in _FILTER_REASONS:
            found = [r for r in (value if isinstance(value, list) else [value]) if _text(r)]
            if found:
                filtered = True
                reasons.extend(str(r).strip() for r in found)
    return filtered, "; ".join(dict.fromkeys(reasons)) or None


def _urls_in(path: tuple[str, ...], text: str) -> Iterator[tuple[int, str]]:
    names = [_normal(key) for key in path]
    if any(word in name for name in names for word in _NOT_THE_VIDEO):
        return  # under a key that names something else, at any depth
    name = names[-1] if names else ""
    whole = as_url(text)
    if whole is not None:
        rank = _rank(name, whole)
        if rank is not None:
            yield rank, whole
        return
    for match in _URL_IN_TEXT.finditer(text):
        url = as_url(match.group(0).rstrip(_URL_TRAILING))
        if url is not None and _looks_like_video(url):
            yield 0, url


def _rank(name: str, url: str) -> int | None:
    """0: looks like a video; 1: anything else; None: an image or a site's root page."""
    path = urlsplit(url).path.lower()
    if path.endswith(_IMAGE_SUFFIXES) or path in ("", "/"):
        return None
    return 0 if _looks_like_video(url) or "video" in name else 1


def _looks_like_video(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(_VIDEO_SUFFIXES)


def _strings(node: object) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every (path of keys it sits under, string) in `node`."""
    for path, value in _items(node):
        if isinstance(value, str):
            yield path, value


def _items(node: object) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path of keys, value) for every value in `node`, depth first, in document order,
    bounded in depth and count. A list's items sit under the list's own path."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), node)]
    visited = 0
    while stack and visited < _MAX_NODES:
        path, value = stack.pop()
        visited += 1
        yield path, value
        if len(path) >= _MAX_DEPTH:
            continue
        if isinstance(value, dict):
            children = [((*path, str(k)), v) for k, v in value.items()]
        elif isinstance(value, list):
            children = [((*path, path[-1] if path else ""), v) for v in value]
        else:
            continue
        stack.extend(reversed(children))


def _normal(key: str) -> str:
    return key.replace("_", "").replace("-", "").casefold()


def _positive(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value > 0
    if isinstance(value, str):
        try:
            return float(value.strip()) > 0
        except ValueError:
            return False
    return False


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
