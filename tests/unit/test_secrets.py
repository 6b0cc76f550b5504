"""Stored-secret encryption across a SECRET_KEY rotation, callback tokens across it, and
what a masked key shows."""

from __future__ import annotations

import pytest

from core.callback import task_of, token
from core.secrets import SecretBox, mask

OLD, NEW = "old-secret-key-0123456789abcdef", "new-secret-key-fedcba9876543210"


def test_a_value_encrypted_under_a_previous_key_still_decrypts() -> None:
    stored = SecretBox(OLD).encrypt("whsec_abc")
    assert SecretBox(NEW, OLD).decrypt(stored) == "whsec_abc"


def test_without_the_previous_key_the_old_value_is_unreadable() -> None:
    stored = SecretBox(OLD).encrypt("whsec_abc")
    with pytest.raises(ValueError, match="SECRET_KEY"):
        SecretBox(NEW).decrypt(stored)


def test_new_values_are_always_encrypted_under_the_current_key() -> None:
    stored = SecretBox(NEW, OLD).encrypt("whsec_abc")
    assert SecretBox(NEW).decrypt(stored) == "whsec_abc"
    with pytest.raises(ValueError):
        SecretBox(OLD).decrypt(stored)


def test_reencrypt_moves_a_value_under_the_current_key() -> None:
    box = SecretBox(NEW, OLD)
    old = SecretBox(OLD).encrypt("sk-upstream")
    assert not box.is_current(old)
    moved = box.reencrypt(old)
    assert box.is_current(moved) and SecretBox(NEW).decrypt(moved) == "sk-upstream"
    assert box.is_current("") and box.reencrypt("") == ""


def test_a_callback_token_made_before_the_rotation_is_still_accepted() -> None:
    made = token(OLD, "video_1")
    assert task_of((NEW, OLD), made) == "video_1"
    assert task_of((NEW,), made) is None
    assert task_of((NEW, OLD), token(NEW, "video_1")) == "video_1"
    assert task_of((NEW, OLD), token("someone-else", "video_1")) is None


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("", ""),
        ("abc", "****"),
        ("sk-123456", "****"),  # 9 characters: nothing of it
        ("sk-0123456789abc", "****" + "9abc"),  # 16: the last 4
        ("sk-" + "x" * 60 + "WXYZ", "****WXYZ"),
    ],
)
def test_a_masked_key_shows_at_most_its_last_four_characters(secret: str, shown: str) -> None:
    assert mask(secret) == shown
