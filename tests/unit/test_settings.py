"""Infrastructure settings from the environment (prefix GOOGLE_VIDEO_)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.secret_strength import shannon_bits, weakness
from schemas.settings import DEV_SECRET_KEY, Settings

STRONG_SECRET = "9f2c41d07be85a3e6c19f4b2d870ae53"
STRONG_ADMIN = "gv_Qm3xT8vL2pRk9WnB4sYc7HdJ"


pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.mark.parametrize(
    "secret",
    [
        DEV_SECRET_KEY,
        "changeme",
        "secret",
        "dev",
        "short-secret",
        "aaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "abababababababababababababababab",
        "abcdefghabcdefghabcdefghabcdefgh",
        "aaaaaaaabbbbbbbbaaaaaaaabbbbbbbc",
        "my-CHANGE-ME-secret-0123456789abcdef",
        "Replace_Me_With_A_Real_Secret_Please",
    ],
)
def test_production_refuses_placeholder_short_or_low_entropy_secret_key(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


@pytest.mark.parametrize(
    ("value", "bits"),
    [("aaaaaaaaaaaaaaaa", 0.0), ("abababababababab", 16.0), ("0123456789abcdef", 64.0)],
)
def test_shannon_bits_is_length_times_entropy_per_character(value: str, bits: float) -> None:
    assert shannon_bits(value) == pytest.approx(bits)


def test_generated_secrets_pass_the_strength_rule() -> None:
    for _ in range(40):  # zxcvbn takes ~20 ms a look
        assert weakness(secrets.token_hex(32)) is None
        assert weakness("gv_" + secrets.token_urlsafe(32)) is None


def test_production_names_every_problem_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(environment="production", secret_key="x" * 20, admin_key="CHANGE_ME")
    assert "SECRET_KEY" in str(caught.value) and "ADMIN_KEY" in str(caught.value)


@pytest.mark.parametrize(
    "values",
    [
        {"s3_secret_access_key": "CHANGE_ME"},
        {"upstream_api_key": "sim-key"},
        {"database_url": "postgresql+asyncpg://gv:CHANGE_ME@db/gv"},
        {"redis_url": "redis://:change-me@redis:6379/0"},
    ],
)
def test_production_refuses_placeholders_in_issued_credentials(values: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings.model_validate(
            {"environment": "production", "secret_key": STRONG_SECRET, **values}
        )


def test_previous_secret_keys_follow_the_current_one() -> None:
    settings = Settings(secret_key="now", secret_key_previous=" old1 , old2,,")
    assert settings.secret_keys == ("now", "old1", "old2")
    assert Settings(secret_key="now").secret_keys == ("now",)


def test_production_accepts_a_placeholder_among_the_previous_keys() -> None:
    """Rotating away from a leaked or shipped key must be possible."""
    settings = Settings(
        environment="production", secret_key=STRONG_SECRET, secret_key_previous=DEV_SECRET_KEY
    )
    assert settings.secret_keys == (STRONG_SECRET, DEV_SECRET_KEY)


@pytest.mark.parametrize("admin_key", ["changeme", "dev", "short-key", ""])
def test_production_refuses_placeholder_or_short_admin_key(admin_key: str) -> None:
    with pytest.raises(ValidationError, match="ADMIN_KEY"):
        Settings(environment="production", secret_key=STRONG_SECRET, admin_key=admin_key)


def test_production_accepts_strong_secrets() -> None:
    settings = Settings(environment="production", secret_key=STRONG_SECRET, admin_key=STRONG_ADMIN)
    assert settings.environment == "production"


def test_production_without_admin_key_is_accepted() -> None:
    assert Settings(environment="production", secret_key=STRONG_SECRET).admin_key is None


@pytest.mark.parametrize("environment", ["development", "test"])
def test_placeholders_are_accepted_outside_production(environment: str) -> None:
    settings = Settings(environment=environment, admin_key="dev")
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.admin_key == "dev"


def test_default_database_url_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    expected = f"sqlite+aiosqlite:///{(tmp_path / 'data').resolve() / 'google-video.db'}"
    assert settings.database_url == expected
    assert settings.database_url.startswith("sqlite")


def test_default_storage_url_is_file_uri_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.storage_url == ((tmp_path / "data").resolve() / "storage").as_uri()
    assert settings.storage_url.startswith("file:///")


def test_relative_data_dir_resolves_against_working_directory(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.database_url.endswith(f"{tmp_path.resolve()}/.data/google-video.db")


def test_explicit_urls_are_kept() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://u@h/db", storage_url="s3://bucket/prefix"
    )
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.storage_url == "s3://bucket/prefix"
    assert not settings.database_url.startswith("sqlite")


def test_environment_variables_with_prefix_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOOGLE_VIDEO_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("GOOGLE_VIDEO_REDIS_URL", "redis://127.0.0.1:6399/3")
    monkeypatch.setenv("GOOGLE_VIDEO_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("GOOGLE_VIDEO_POLL_FIRST_DELAY", "0.25")
    monkeypatch.setenv("GOOGLE_VIDEO_ENVIRONMENT", "test")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.redis_url == "redis://127.0.0.1:6399/3"
    assert settings.data_dir == tmp_path / "d"
    assert settings.poll_first_delay == 0.25
    assert settings.environment == "test"


def test_unprefixed_environment_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:1/0")
    assert Settings().redis_url == "redis://127.0.0.1:6379/0"


def test_production_check_also_applies_to_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_VIDEO_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings()
    monkeypatch.setenv("GOOGLE_VIDEO_SECRET_KEY", STRONG_SECRET)
    assert Settings().environment == "production"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("api_key_cache_seconds", -1),
        ("idempotency_ttl_seconds", 3600),
        ("max_body_bytes", 0),
        ("max_video_bytes", 0),
        ("environment", "staging"),
    ],
)
def test_out_of_range_settings_are_rejected(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({name: value})


@pytest.mark.parametrize(
    "value",
    [
        "0123456789abcdef0123",
        "password1234567890",
        "correcthorsebatterystaple",
        "qwertyuiopasdfghjkl",
    ],
)
def test_production_refuses_guessable_secrets_that_look_random_to_shannon(value: str) -> None:
    with pytest.raises(ValidationError, match="guessable"):
        Settings(environment="production", secret_key=value)


def test_production_refuses_an_admin_key_equal_to_the_secret_key() -> None:
    with pytest.raises(ValidationError, match="equals"):
        Settings(environment="production", secret_key=STRONG_SECRET, admin_key=STRONG_SECRET)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://gv:google%5Fvideo@db/gv",
        "postgresql+asyncpg://gv@db/gv?password=google_video",
        "redis://:CHANGE_ME@redis:6379/0",
    ],
)
def test_production_reads_passwords_however_a_url_carries_them(url: str) -> None:
    field = "redis_url" if url.startswith("redis") else "database_url"
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(environment="production", secret_key=STRONG_SECRET, **{field: url})


def test_the_log_level_is_one_of_loggings_levels_in_any_case() -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="LOUD")


@pytest.mark.parametrize("command", ["api", "worker", "dev"])
@pytest.mark.parametrize(
    ("name", "value"),
    [("GOOGLE_VIDEO_DB_POOL_SIZE", "abc"), ("GOOGLE_VIDEO_LOG_LEVEL", "LOUD")],
)
def test_a_process_with_a_bad_setting_says_so_in_one_line(
    command: str,
    name: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cli.main import main

    monkeypatch.setenv(name, value)
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("google-video: the settings are not usable:")
    assert name.removeprefix("GOOGLE_VIDEO_").lower() in err
