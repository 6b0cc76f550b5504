import pytest

from simulator.directives import (
    DirectiveError,
    Length,
    Script,
    SubmitOutcome,
    SubmitShape,
    UrlPlace,
    parse_script,
    strip_directives,
)


def test_prompt_without_directives_gets_the_default_script():
    assert parse_script("a cat surfing a wave at sunset") == Script()


def test_text_outside_directives_is_ignored_and_several_directives_combine():
    script = parse_script(
        "a cat [sim:fail=内容违规 policy] surfing [sim:duration=12.5][sim:poll429=2] "
        "[sim:poll500=1] [sim:nourl=3] [sim:unknown_status=4] [sim:download404] "
        "[sim:size=1000000] [sim:length=absent] [sim:lowercase]"
    )
    assert script == Script(
        fail="内容违规 policy",
        duration=12.5,
        poll429=2,
        poll500=1,
        nourl=3,
        unknown_status=4,
        download404=True,
        size=1_000_000,
        length=Length.ABSENT,
        lowercase=True,
    )


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        ("400", SubmitOutcome.BAD_REQUEST),
        ("429", SubmitOutcome.OVERLOADED),
        ("500", SubmitOutcome.FAILED),
        ("timeout", SubmitOutcome.TIMEOUT),
        ("401", SubmitOutcome.BAD_KEY),
        ("403", SubmitOutcome.QUOTA),
        ("429_busy", SubmitOutcome.BUSY),
        ("429_limit", SubmitOutcome.RATE_LIMITED),
        ("429_empty", SubmitOutcome.EMPTY_429),
        ("502", SubmitOutcome.PROXY_502),
        ("502_empty", SubmitOutcome.PROXY_502_EMPTY),
        ("503", SubmitOutcome.NO_CHANNEL),
        ("504", SubmitOutcome.PROXY_504),
        ("520", SubmitOutcome.CDN_520),
        ("524", SubmitOutcome.CDN_524),
    ],
)
def test_submit_directive_selects_the_submit_outcome(value, outcome):
    assert parse_script(f"[sim:submit={value}]").submit is outcome


def test_submit500_once_is_submit500_of_one():
    assert parse_script("x [sim:submit500_once]").submit500 == 1
    assert parse_script("x [sim:submit500=3]").submit500 == 3


def test_a_repeated_directive_keeps_the_last_value():
    assert parse_script("[sim:duration=5] [sim:duration=7]").duration == 7.0


def test_directive_names_are_lowercase_only():
    assert parse_script("[SIM:fail=x] [sim:FAIL=x]") == Script()


@pytest.mark.parametrize(
    "prompt",
    [
        "[sim:explode]",
        "[sim:fail]",
        "[sim:fail=]",
        "[sim:duration=soon]",
        "[sim:duration=-1]",
        "[sim:duration=inf]",
        "[sim:poll429=-1]",
        "[sim:poll429=two]",
        "[sim:size=1.5]",
        "[sim:length=lie]",
        "[sim:submit=418]",
        "[sim:download404=yes]",
        "[sim:submit500_once=2]",
        "[sim:safety=yes]",
        "[sim:url_at=somewhere]",
        "[sim:submit_shape=xml]",
        "[sim:success_word=two words]",
        "[sim:failure_word=]",
        "[sim:retry_after=1.5]",
        "[sim:poll401_after_s=-3]",
    ],
)
def test_unknown_directive_or_bad_value_is_rejected(prompt):
    with pytest.raises(DirectiveError):
        parse_script(prompt)


def test_quirk_directives_are_read():
    script = parse_script(
        "fox [sim:safety][sim:openai_failure][sim:url_at=result_url][sim:sparse]"
        "[sim:queued_word=QUEUED][sim:running_word=running][sim:success_word=succeeded]"
        "[sim:failure_word=expired][sim:null_data=1][sim:task_not_exist=2][sim:poll401=3]"
        "[sim:poll401_after=4][sim:poll401_after_s=2.5][sim:poll429_empty=5][sim:poll502=6]"
        "[sim:poll502_empty=7][sim:retry_after=3600][sim:submit=504][sim:submit_times=1]"
        "[sim:submit_shape=openai][sim:poll404=8]"
    )
    assert script == Script(
        safety=True,
        openai_failure=True,
        url_at=UrlPlace.RESULT_URL,
        sparse=True,
        queued_word="QUEUED",
        running_word="running",
        success_word="succeeded",
        failure_word="expired",
        null_data=1,
        task_not_exist=2,
        poll401=3,
        poll401_after=4,
        poll401_after_s=2.5,
        poll429_empty=5,
        poll502=6,
        poll502_empty=7,
        poll404=8,
        retry_after=3600,
        submit=SubmitOutcome.PROXY_504,
        submit_times=1,
        submit_shape=SubmitShape.OPENAI,
    )


def test_only_proxy_answers_and_the_timeout_create_the_task():
    creating = {outcome.value for outcome in SubmitOutcome if outcome.creates_task}
    assert creating == {"502", "502_empty", "504", "520", "524", "timeout"}


def test_failure_and_the_401_window_are_derived_from_the_script():
    assert not Script().fails and not Script().auth_window
    assert Script(fail="x").fails and Script(openai_failure=True).fails
    assert not Script(safety=True).fails
    assert Script(poll401_after=0).auth_window
    assert Script(poll401_after_s=1.0).auth_window
    assert Script(poll401=2).auth_window


def test_strip_directives_leaves_the_words_of_the_prompt():
    assert strip_directives("a [sim:duration=3]  fox [sim:safety] runs") == "a fox runs"
