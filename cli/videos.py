"""``google-video videos …``: create (optionally waiting with a progress bar and saving
the MP4), list, get, cancel, delete and download, over the HTTP API."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from cli.failures import FAILED, INTERRUPTED, USAGE, CliError
from cli.http_client import ApiClient, download, save_atomically, sendable, writable_target
from cli.output import Output, size, text, when

POLL_SECONDS = 1.0
# What `images` takes as it is; anything else names a local file, uploaded first.
PASSED_AS_IS = ("http://", "https://", "data:", "upload_")
VARIANT_SUFFIX = {"video": ".mp4", "thumbnail": ".webp", "spritesheet": ".jpg"}


def run(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    if getattr(args, "output", None) == "-" and out.as_json:
        raise CliError("--output - and --json both write to stdout: choose one", USAGE)
    output = getattr(args, "output", None)
    if output and output != "-":
        # Before anything is created, charged or waited for: a wrong -o fails at once.
        writable_target(Path(output))
    action: Callable[[ApiClient, Output, argparse.Namespace], int] = _ACTIONS[args.action]
    return action(api, out, args)


# --- create and wait --------------------------------------------------------------------


def _create(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    if args.idempotency_key is not None:
        sendable("--idempotency-key", args.idempotency_key)
    body: dict[str, Any] = {"prompt": args.prompt}
    optional = {
        "model": args.model,
        "seconds": args.seconds,
        "size": args.size,
        "aspect_ratio": args.aspect_ratio,
        "user": args.user,
        "seed": args.seed,
        "enhance_prompt": args.enhance_prompt,
        "webhook_url": args.webhook_url,
    }
    body |= {name: value for name, value in optional.items() if value is not None}
    if args.metadata:
        body["metadata"] = dict(_pair(item) for item in args.metadata)
    if args.image:
        body["images"] = [_image(api, out, ref) for ref in args.image]
    # One key per invocation: the retries below (a timeout, a dropped connection, a 503)
    # answer with the first video, one task and one hold, never a second charge.
    key = args.idempotency_key or f"cli-{uuid.uuid4()}"
    video = api.call("POST", "/v1/videos", json=body, headers={"Idempotency-Key": key}, retry=True)
    if not (args.wait or args.output):
        _show(out, video)
        if not out.as_json:
            out.note(f"follow it: google-video videos get {video['id']}  (or create with --wait)")
        return 0
    try:
        done = _wait(api, out, video)
    except KeyboardInterrupt:
        raise CliError(
            f"interrupted; {video['id']} goes on: google-video videos get {video['id']}",
            INTERRUPTED,
        ) from None
    if done["status"] != "completed":
        if out.as_json:
            out.json(done)
        raise CliError(_why_not(done))
    path = _save(api, out, done, args.output, "video")
    if out.as_json:
        out.json(done)
    else:
        _saved(out, done, path, to_stdout=args.output == "-")
    return 0


def _wait(api: ApiClient, out: Output, video: dict[str, Any]) -> dict[str, Any]:
    """Poll the video until it is completed or failed, with a progress bar on stderr
    (status lines when stderr is not a terminal; nothing with ``--json``)."""
    video_id = video["id"]
    terminal = sys.stderr.isatty()
    with _bar(out, visible=terminal and not out.as_json) as show:
        last = ""
        while True:
            state = _state(video)
            show(state, int(video.get("progress") or 0))
            if not terminal and not out.as_json and state != last:
                print(f"{video_id}: {state} {video.get('progress', 0)}%", file=sys.stderr)
            last = state
            if video["status"] in ("completed", "failed"):
                return video
            time.sleep(POLL_SECONDS)
            video = api.call("GET", f"/v1/videos/{video_id}", retry=True)


@contextmanager
def _bar(out: Output, *, visible: bool) -> Iterator[Callable[[str, int], None]]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=out.err,
        disable=not visible,
    )
    with progress:
        task = progress.add_task("queued", total=100)

        def show(state: str, percent: int) -> None:
            progress.update(task, description=state, completed=percent)

        yield show


def _state(video: dict[str, Any]) -> str:
    internal = video.get("internal_status")
    return str(internal or video.get("status"))


def _why_not(video: dict[str, Any]) -> str:
    if video.get("cancelled"):
        return f"{video['id']} was cancelled"
    error = video.get("error") or {}
    reason = f"{error.get('code', '?')}: {error.get('message', '')}".rstrip(": ")
    return f"{video['id']} failed: {reason}"


# --- images ---------------------------------------------------------------------------


def _image(api: ApiClient, out: Output, ref: str) -> str:
    """An ``images`` entry: a local file is uploaded (its ``upload_…`` id); URLs, data
    URIs and upload ids go as they are."""
    path = Path(ref).expanduser()
    if path.is_dir():
        raise CliError(f"--image {ref}: is a directory: name an image file", USAGE)
    if path.is_file():
        try:
            with path.open("rb") as image:
                upload = api.call("POST", "/v1/uploads", files={"file": (path.name, image)})
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror or exc}", USAGE) from None
        if not out.as_json:
            out.note(f"uploaded {path} as {upload['id']}")
        return str(upload["id"])
    if ref.startswith(PASSED_AS_IS):
        return ref
    raise CliError(
        f"--image {ref}: no such file (nor an http(s) URL, data: URI or upload_ id)", USAGE
    )


def _pair(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise CliError(f"--metadata {item!r}: write NAME=VALUE", USAGE)
    return name, value


# --- read, list, cancel, delete -------------------------------------------------------


def _get(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    _show(out, api.call("GET", f"/v1/videos/{_id(args.video_id)}", retry=True))
    return 0


def _list(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    params = {
        "limit": args.limit,
        "after": args.after,
        "user": args.user,
        "status": args.status,
        "order": args.order,
    }
    page = api.call("GET", "/v1/videos", params=params, retry=True)
    if out.as_json:
        out.json(page)
        return 0
    out.table(
        ("id", "status", "progress", "model", "user", "created", "prompt"),
        (
            (
                v["id"],
                "cancelled" if v.get("cancelled") else str(v["status"]),
                f"{v.get('progress', 0)}%",
                str(v["model"]),
                str(v.get("user", "")),
                when(v.get("created_at")),
                _short(str(v.get("prompt", ""))),
            )
            for v in page["data"]
        ),
    )
    if page.get("has_more"):
        out.note(f"more: google-video videos list --after {page['last_id']}")
    return 0


def _cancel(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    video = api.call("POST", f"/v1/videos/{_id(args.video_id)}/cancel")
    if out.as_json:
        out.json(video)
    else:
        out.line(f"cancelled {video['id']} (its credits are released)")
    return 0


def _delete(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    deleted = api.call("DELETE", f"/v1/videos/{_id(args.video_id)}")
    if out.as_json:
        out.json(deleted)
    else:
        out.line(f"deleted {deleted['id']}")
    return 0


def _download(api: ApiClient, out: Output, args: argparse.Namespace) -> int:
    video = api.call("GET", f"/v1/videos/{_id(args.video_id)}", retry=True)
    path = _save(api, out, video, args.output, args.variant)
    if out.as_json:
        out.json({"id": video["id"], "variant": args.variant, "path": str(path)})
    elif args.output != "-":
        out.line(f"saved {path} ({size(path.stat().st_size)})")
    return 0


def _id(video_id: str) -> str:
    """A video id as a path segment: anything else would name another endpoint."""
    if not video_id or "/" in video_id or "?" in video_id or "#" in video_id:
        raise CliError(f"not a video id: {video_id!r}", USAGE)
    return video_id


def _short(prompt: str, width: int = 48) -> str:
    flat = " ".join(prompt.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _show(out: Output, video: dict[str, Any]) -> None:
    if out.as_json:
        out.json(video)
        return
    out.fields(
        (name, when(value) if name.endswith("_at") and isinstance(value, int) else text(value))
        for name, value in video.items()
    )


# --- download -------------------------------------------------------------------------


def _save(
    api: ApiClient, out: Output, video: dict[str, Any], output: str | None, variant: str
) -> Path:
    """Stream the video (or its thumbnail or spritesheet) to ``output`` (default
    ``<id>.mp4``; ``-`` is stdout), checking the MP4's size and SHA-256 against the
    video object."""
    video_id = video["id"]
    if video.get("status") != "completed":
        raise CliError(f"{video_id} is not completed ({_state(video)}): nothing to download")
    target = Path(output or f"{video_id}{VARIANT_SUFFIX[variant]}")
    if output != "-":
        writable_target(target)
    params = {"variant": variant} if variant != "video" else None
    with api.stream(f"/v1/videos/{video_id}/content", params) as response:
        total = int(response.headers.get("content-length") or 0) or None
        visible = sys.stderr.isatty() and not out.as_json and output != "-"
        with _byte_bar(out, total, visible=visible) as advance:

            def write(file: IO[bytes]) -> tuple[int, str]:
                return download(response, file, advance)

            if output == "-":
                count, sha256 = write(sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                count, sha256 = save_atomically(target, write)
    if variant == "video":
        _check(video, count, sha256, target if output != "-" else None)
    return target


@contextmanager
def _byte_bar(out: Output, total: int | None, *, visible: bool) -> Iterator[Callable[[int], None]]:
    progress = Progress(
        TextColumn("downloading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=out.err,
        disable=not visible,
        transient=True,
    )
    with progress:
        task = progress.add_task("download", total=total)
        yield lambda count: progress.advance(task, count)


def _check(video: dict[str, Any], count: int, sha256: str, path: Path | None) -> None:
    expected_bytes, expected_sha = video.get("video_bytes"), video.get("video_sha256")
    wrong = (expected_bytes is not None and count != expected_bytes) or (
        expected_sha is not None and sha256 != expected_sha
    )
    if wrong:
        if path is not None:
            path.unlink(missing_ok=True)
        raise CliError(
            f"the download of {video['id']} does not match the video ({count} bytes, sha256"
            f" {sha256[:12]}…; expected {expected_bytes} bytes, {str(expected_sha)[:12]}…)",
            FAILED,
        )


def _saved(out: Output, video: dict[str, Any], path: Path, *, to_stdout: bool) -> None:
    facts = [size(video.get("video_bytes"))]
    if video.get("duration_ms"):
        facts.append(f"{video['duration_ms'] / 1000:.1f} s")
    if video.get("width") and video.get("height"):
        facts.append(f"{video['width']}x{video['height']}")
    where = "written to stdout" if to_stdout else f"saved {path}"
    message = f"{video['id']} completed: {where} ({', '.join(facts)})"
    if to_stdout:
        out.note(message)  # beside an MP4 on stdout, the message goes to stderr
    else:
        out.line(message)


_ACTIONS: dict[str, Callable[[ApiClient, Output, argparse.Namespace], int]] = {
    "create": _create,
    "get": _get,
    "list": _list,
    "cancel": _cancel,
    "delete": _delete,
    "download": _download,
}
