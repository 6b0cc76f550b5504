import pytest

from simulator.directives import DirectiveError, Script, SubmitOutcome, parse_script


def test_prompt_without_directives_gets_the_default_script():
    assert parse_script("a cat surfing a wave at sunset") == Script()


def test_text_outside_directives_is_ignored_and_several_directives_combine():
    script = parse_script(
        "a cat [sim:fail=内容违规 policy] surfing [sim:duration=12.5][sim:poll429=2] "
        "[sim:poll500=1] [sim:nourl=3] [sim:unknown_status=4] [sim:download404] "
        "[sim:size=1000000] [sim:lowercase]"
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
        lowercase=True,
    )


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        ("400", SubmitOutcome.BAD_REQUEST),
        ("429", SubmitOutcome.OVERLOADED),
        ("500", SubmitOutcome.FAILED),
        ("timeout", SubmitOutcome.TIMEOUT),
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
        "[sim:submit=418]",
        "[sim:download404=yes]",
        "[sim:submit500_once=2]",
    ],
)
def test_unknown_directive_or_bad_value_is_rejected(prompt):
    with pytest.raises(DirectiveError):
        parse_script(prompt)
