"""GOOGLE_VIDEO_EGRESS_ALLOW and GOOGLE_VIDEO_EGRESS_ALLOW_HTTP, read from the environment
as an operator writes them, and the variable they replace."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.egress import Policy
from schemas.settings import Settings

pytestmark = pytest.mark.usefixtures("clean_env")


def test_by_default_only_public_https_targets_are_allowed() -> None:
    settings = Settings()
    assert (settings.egress_allow, settings.egress_allow_http) == ([], False)
    assert Policy.from_settings(settings) == Policy()


def test_the_allowlist_is_comma_separated_hosts_addresses_and_networks(monkeypatch) -> None:
    monkeypatch.setenv(
        "GOOGLE_VIDEO_EGRESS_ALLOW", " 10.20.0.0/16, Hooks.Corp.Internal., 10.1.2.3,fd00::/8,, "
    )
    monkeypatch.setenv("GOOGLE_VIDEO_EGRESS_ALLOW_HTTP", "true")
    settings = Settings()
    assert settings.egress_allow == [
        "10.20.0.0/16",
        "hooks.corp.internal",
        "10.1.2.3/32",
        "fd00::/8",
    ]
    policy = Policy.from_settings(settings)
    assert policy.hosts == {"hooks.corp.internal"} and policy.allow_http
    assert [str(n) for n in policy.networks] == ["10.20.0.0/16", "10.1.2.3/32", "fd00::/8"]


@pytest.mark.parametrize("entry", ["http://10.0.0.1", "10.0.0.0/33", "hooks corp", "-bad.example"])
def test_an_entry_that_is_no_host_address_or_network_stops_the_start(monkeypatch, entry) -> None:
    monkeypatch.setenv("GOOGLE_VIDEO_EGRESS_ALLOW", entry)
    with pytest.raises(ValidationError, match="EGRESS_ALLOW"):
        Settings()


def test_the_replaced_webhook_allow_private_stops_the_start_saying_what_replaces_it(
    monkeypatch,
) -> None:
    monkeypatch.setenv("GOOGLE_VIDEO_WEBHOOK_ALLOW_PRIVATE", "true")
    with pytest.raises(ValidationError, match="GOOGLE_VIDEO_EGRESS_ALLOW"):
        Settings()
