import pytest

from simulator.directives import DirectiveError
from simulator.main import settings_from_env
from simulator.quirks import Quirks, normalise_directives, patched


def test_only_the_directives_of_the_quirks_text_are_kept():
    text = "act like new-api 0.9: [sim:url_at=result_url] and  [sim:lowercase]"
    assert normalise_directives(text) == "[sim:url_at=result_url] [sim:lowercase]"


def test_a_bad_quirk_directive_is_refused():
    with pytest.raises(DirectiveError):
        normalise_directives("[sim:url_at=nowhere]")
    with pytest.raises(ValueError, match="GOOGLE_VIDEO_SIM_QUIRKS"):
        settings_from_env({"GOOGLE_VIDEO_SIM_QUIRKS": "[sim:bogus]"})


def test_quirks_come_from_the_environment():
    settings = settings_from_env({"GOOGLE_VIDEO_SIM_QUIRKS": "[sim:sparse] x"})
    assert settings.quirks == "[sim:sparse]"


def test_patching_changes_only_the_given_settings():
    start = Quirks(directives="[sim:sparse]")
    assert patched(start, {"key_exhausted": True}) == Quirks("[sim:sparse]", True)
    assert patched(start, {"quirks": ""}) == Quirks("", False)
    assert patched(start, {}).as_json() == {"quirks": "[sim:sparse]", "key_exhausted": False}


@pytest.mark.parametrize(
    "body",
    [[], {"key_exhausted": "yes"}, {"quirks": 3}, {"quirks": "[sim:nope]"}, {"other": 1}],
)
def test_a_bad_patch_is_refused(body):
    with pytest.raises(ValueError):
        patched(Quirks(), body)
