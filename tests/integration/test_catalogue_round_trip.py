"""What ``GET /v1/models`` offers for a model ``POST /v1/videos`` accepts for it, and a
well-formed value it does not offer is a 400 ``unsupported_parameter`` naming the model
and the parameter: for every model of the default catalogue and for operators' entries.
A value of no kind is a 400 ``validation_error`` and costs nothing, in JSON and in
multipart; a catalogue entry offering one is refused by the admin config. On PostgreSQL
and on SQLite."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from core.repo.tables import tasks
from tests.integration.conftest import BACKENDS
from tests.integration.images import PNG_URI
from tests.integration.test_hostile_kinds import assert_problem, post_form
from tests.offers import PROMPT, offered, unoffered

OPERATOR_MODELS: list[dict[str, Any]] = [
    # BREAKER finding 13's entry.
    {"id": "op-model", "aspect_ratios": ["16:9", "1:1"], "durations": [5, 10],
     "resolutions": ["720p"], "price": 10},
    {"id": "op-wide", "aspect_ratios": ["16:9", "9:16", "1:1", "4:3", "21:9"],
     "resolutions": ["480p", "720p", "1080p", "2160p"], "durations": [4, 10, 600],
     "max_images": 2, "image_roles": ["first_frame", "last_frame"], "reference_images": 3,
     "negative_prompt": True, "person_generation": ["dont_allow"], "seed": False,
     "enhance_prompt": False, "longest_seconds_only": ["2160p", "reference_images"],
     "price": 10},
    {"id": "op-frames-only", "text_to_video": False, "max_images": 1,
     "image_roles": ["last_frame"], "aspect_ratios": ["3:2"], "resolutions": ["720p"],
     "price": 10},
    {"id": "op-references-only", "text_to_video": False, "reference_images": 2,
     "aspect_ratios": ["9:16"], "resolutions": ["1080p"], "durations": [6], "price": 10},
]  # fmt: skip
# Text of no kind: signs, zeros, other scripts' digits, spaces, separators, length.
MALFORMED_TEXT = [
    "", "0", "00", "-1", "+8", "8.0", "1e3", "601", "1000", "007", " 8", "8 ", "8\n", "\t8",
    "\uff11\uff10", "\u0663", "8\u00b2", "abc", "9" * 10_000, "1:0", "0:1", "0:0", "16:09",
    "16/9", "16:9:1", "100:1", "\uff11:\uff11", "1280X720", "1280\u00d7720", "0x720",
    "1280x0", "-1280x720", "1280x720 ", "1234567x1", "720p",
]  # fmt: skip
WRONG_TYPES = [8, 8.0, -1, 0, 10**30, True, False, ["8"], {"seconds": "8"}]
MALFORMED_OPTIONS: dict[str, list[Any]] = {
    "image_roles": ["first_frame", ["middle_frame"], ["FIRST_FRAME"], ["first_frame "], [1],
                    [None], [["reference"]], {"0": "reference"}, ["reference"] * 9],
    "person_generation": ["ALLOW_ALL", "allow all", "allow_all\n", "", 1, True, ["allow_all"]],
}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def catalogue(admin: httpx.AsyncClient, configure: Any) -> list[dict[str, Any]]:
    """The default catalogue and the operators' entries, as GET /v1/models shows them;
    limits out of the way of a few hundred creates."""
    models = (await admin.get("/v1/admin/config")).json()["models"]
    await configure(
        models=[*models, *OPERATOR_MODELS],
        max_concurrent_tasks_per_user=10_000,
        user_creates_per_minute=1_000_000,
    )
    listed: list[dict[str, Any]] = (await admin.get("/v1/models")).json()["data"]
    assert {m["id"] for m in OPERATOR_MODELS} <= {m["id"] for m in listed}
    return listed


@pytest.fixture
def costs_nothing(acme: httpx.AsyncClient, assert_ledger: Any, engine: Any) -> Any:
    """``await costs_nothing()``: acme still has its 1,000 credits, holds none, and no
    task was written."""

    async def check() -> None:
        credits = (await acme.get("/v1/credits/acme")).json()
        assert (credits["balance"], credits["held"]) == (1000, 0), credits
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(tasks))).scalar() == 0
        await assert_ledger()

    return check


async def test_every_model_accepts_what_it_offers_and_names_itself_refusing_the_rest(
    catalogue, client_for, grant, assert_ledger
):
    acme = await client_for("acme")
    await grant("acme", "acme", 10_000_000)
    wrong: list[str] = []
    asked = 0
    for info in catalogue:
        for body in offered(info, PNG_URI):
            asked += 1
            response = await acme.post("/v1/videos", json=body)
            if response.status_code != 200:
                wrong.append(f"offered, refused: {_shown(body)} -> {response.text[:300]}")
                continue
            video = response.json()
            told = {k: video[k] for k in ("seconds", "size") if k in body}
            if video["model"] != info["id"] or told != {k: body[k] for k in told}:
                wrong.append(f"accepted as something else: {_shown(body)} -> {video}")
        for body, parameter in unoffered(info, PNG_URI):
            asked += 1
            response = await acme.post("/v1/videos", json=body)
            problem = response.json()
            named = tuple(problem.get(k) for k in ("code", "model", "parameter"))
            expected = ("unsupported_parameter", info["id"], parameter)
            if response.status_code != 400 or named != expected:
                wrong.append(f"not offered, not refused so: {_shown(body)} -> {problem}")
    assert wrong == [], "\n".join(wrong)
    assert asked > 300  # every model, every value
    await assert_ledger()


@pytest.mark.parametrize("field", ["seconds", "size", "aspect_ratio"])
async def test_a_value_of_no_kind_is_a_validation_problem_that_costs_nothing(
    acme, costs_nothing, field
):
    for value in [*MALFORMED_TEXT, *WRONG_TYPES]:
        body = {"prompt": PROMPT, "model": "veo3", field: value}
        problem = assert_problem(await acme.post("/v1/videos", json=body), 400, "validation_error")
        assert problem["errors"][0]["field"] == field, (value, problem)
    for value in MALFORMED_TEXT:
        response = await post_form(acme, {"prompt": PROMPT, "model": "veo3", field: value})
        assert_problem(response, 400, "validation_error")
    await costs_nothing()


@pytest.mark.parametrize("field", sorted(MALFORMED_OPTIONS))
async def test_an_option_of_no_kind_is_a_validation_problem_that_costs_nothing(
    acme, costs_nothing, field
):
    for value in MALFORMED_OPTIONS[field]:
        body = {"prompt": PROMPT, "model": "veo-3.1-generate-preview", field: value}
        problem = assert_problem(await acme.post("/v1/videos", json=body), 400, "validation_error")
        assert problem["errors"][0]["field"].split(".")[0] == field, (value, problem)
    await costs_nothing()


# Fields an operator's entry may get wrong, each with what the problem must name.
MALFORMED_ENTRIES: list[tuple[dict[str, Any], str]] = [
    ({"durations": [0]}, "durations"),
    ({"durations": [601]}, "durations"),
    ({"durations": [-5]}, "durations"),
    ({"durations": ["10"]}, "durations"),
    ({"durations": [10.0]}, "durations"),
    ({"durations": [True]}, "durations"),
    ({"durations": [2**63]}, "durations"),
    ({"aspect_ratios": ["1:0"]}, "aspect_ratios"),
    ({"aspect_ratios": ["0:1"]}, "aspect_ratios"),
    ({"aspect_ratios": ["16:09"]}, "aspect_ratios"),
    ({"aspect_ratios": ["16/9"]}, "aspect_ratios"),
    ({"aspect_ratios": ["100:1"]}, "aspect_ratios"),
    ({"aspect_ratios": ["\uff11:\uff11"]}, "aspect_ratios"),
    ({"aspect_ratios": [" 1:1"]}, "aspect_ratios"),
    ({"aspect_ratios": [16]}, "aspect_ratios"),
    ({"aspect_ratios": ["16:9", "32:18"]}, "16:9 and 32:18 are the same ratio"),
    ({"aspect_ratios": ["99:98", "98:97"], "resolutions": ["100p"]}, "both make size 102x100"),
    ({"resolutions": ["720"]}, "resolutions"),
    ({"resolutions": ["0720p"]}, "resolutions"),
    ({"resolutions": ["720P"]}, "resolutions"),
    ({"resolutions": ["4k"]}, "resolutions"),
    ({"resolutions": ["99p"]}, "resolutions"),
    ({"resolutions": ["10000p"]}, "resolutions"),
    ({"aspect_ratios": [], "resolutions": ["720p"]}, "without aspect_ratios"),
    ({"person_generation": ["everyone"]}, "person_generation"),
    ({"image_roles": [1], "max_images": 1}, "image_roles"),
    ({"longest_seconds_only": ["2160p"]}, "longest_seconds_only"),
    ({"longest_seconds_only": ["4k"]}, "longest_seconds_only"),
    ({"longest_seconds_only": ["reference_images"]}, "longest_seconds_only"),
    (
        {"text_to_video": False, "reference_images": 2, "durations": [4, 8],
         "longest_seconds_only": ["reference_images"]},
        "durations [4] can never be asked for",
    ),
]  # fmt: skip


async def test_the_admin_config_refuses_an_entry_offering_what_no_request_can_name(admin):
    before = (await admin.get("/v1/admin/config")).json()
    sound = {"id": "op-bad", "durations": [4, 8], "aspect_ratios": ["16:9"],
             "resolutions": ["720p"]}  # fmt: skip
    index, wrong = len(before["models"]), []
    for fields, named in MALFORMED_ENTRIES:
        body = {"models": [*before["models"], {**sound, **fields}]}
        response = await admin.put("/v1/admin/config", json=body)
        problem = assert_problem(response, 400, "validation_error")
        if named not in problem["detail"] or f"models.{index}" not in problem["detail"]:
            wrong.append(f"{fields}: {problem['detail']}")
    assert wrong == [], "\n".join(wrong)
    assert (await admin.get("/v1/admin/config")).json() == before
    response = await admin.put("/v1/admin/config", json={"models": [*before["models"], sound]})
    assert response.status_code == 200, response.text


def _shown(body: dict[str, Any]) -> dict[str, Any]:
    return {k: (f"<{len(v)} images>" if k == "images" else v) for k, v in body.items()}
