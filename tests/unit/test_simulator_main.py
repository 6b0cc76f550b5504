import pytest

from simulator.main import EnvSettings, settings_from_env


def test_empty_environment_gives_the_defaults():
    assert settings_from_env({}) == EnvSettings()
    assert settings_from_env({}).submit_timeout_delay == 600.0


def test_environment_variables_are_parsed():
    settings = settings_from_env(
        {
            "GOOGLE_VIDEO_SIM_TIME_SCALE": "0.01",
            "GOOGLE_VIDEO_SIM_SUBMIT_TIMEOUT_DELAY": "2",
            "GOOGLE_VIDEO_SIM_NOTIFY_DELAY": "0.5",
            "GOOGLE_VIDEO_SIM_NOTIFY_FAILURE_RATE": "0.25",
            "GOOGLE_VIDEO_SIM_VIDEO_BYTES": "200000000",
            "GOOGLE_VIDEO_SIM_SEED": "7",
        }
    )
    assert settings == EnvSettings(0.01, 2.0, 0.5, 0.25, 200_000_000, 7)


def test_served_files_are_capped_at_50_mib_unless_configured():
    assert settings_from_env({}).max_video_bytes == 50 * 1024 * 1024
    configured = settings_from_env({"GOOGLE_VIDEO_SIM_MAX_VIDEO_BYTES": "1000000"})
    assert configured.max_video_bytes == 1_000_000


def test_malformed_variable_names_itself():
    with pytest.raises(ValueError, match="GOOGLE_VIDEO_SIM_VIDEO_BYTES"):
        settings_from_env({"GOOGLE_VIDEO_SIM_VIDEO_BYTES": "big"})
