"""A video larger than ``MAX_VIDEO_BYTES`` fails ``video_too_large``: the hold released,
nothing left in the bucket (no object, no multipart upload), however the upstream tells
the length; a video of exactly the cap is stored.

The cap is just above one S3 part (5 MiB), so an upload is under way when the count
passes the cap.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.e2e.conftest import BUCKET, running_stack
from tests.integration.e2e.helpers import create, credits, finished, sim_stats, sim_tasks
from tests.integration.stack import Stack
from tests.services import s3_client

CAP = 6 * 1024 * 1024
GRANT = 100_000


@pytest.fixture(scope="module")
def stack(pg_url, redis_url, s3_endpoint, tmp_path_factory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("size-cap-logs")
    env = {"GOOGLE_VIDEO_MAX_VIDEO_BYTES": str(CAP)}
    with running_stack(pg_url, redis_url, s3_endpoint, log_dir, env) as result:
        yield result


def _left_in_bucket(s3_endpoint: str, video_id: str) -> tuple[list[str], list[str]]:
    """The objects and the unfinished multipart uploads under the video's prefix."""
    s3 = s3_client(s3_endpoint)
    prefix = f"e2e/videos/{video_id}/"
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
    return [o["Key"] for o in objects], [u["Key"] for u in uploads]


async def test_a_video_of_exactly_the_cap_is_stored(acme, assert_ledger):
    video = await create(acme, f"at the cap [sim:duration=1] [sim:size={CAP}]")
    done = await finished(acme, video["id"], deadline=60)
    assert done["status"] == "completed", done
    assert done["video_bytes"] == CAP
    await assert_ledger()


@pytest.mark.parametrize("length", ["declared", "absent", "gzip"])
async def test_a_video_past_the_cap_fails_and_leaves_nothing(
    acme, stack, s3_endpoint, assert_ledger, length
):
    told = "" if length == "declared" else f" [sim:length={length}]"
    prompt = f"one byte too many, {length} [sim:duration=1] [sim:size={CAP + 1}]{told}"
    video = await create(acme, prompt)
    done = await finished(acme, video["id"], deadline=60)

    assert done["status"] == "failed", done
    assert done["error"]["code"] == "video_too_large"
    assert f"maximum of {CAP} bytes" in done["error"]["message"]
    assert (f"declared {CAP + 1} bytes" in done["error"]["message"]) == (length == "declared")
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (GRANT, 0)
    assert kinds.count("release") == 1 and "capture" not in kinds
    assert _left_in_bucket(s3_endpoint, video["id"]) == ([], [])
    (task,) = [t for t in await sim_tasks(stack) if t["prompt"] == prompt]
    assert (await sim_stats(stack))["downloads"][task["task_id"]] == 1  # not retried
    await assert_ledger()
