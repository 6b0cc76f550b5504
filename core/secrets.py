"""Encryption at rest for secrets stored in the database (the upstream API key, webhook
signing secrets), with ``SECRET_KEY`` rotation.

Values are always encrypted under the current key; the previous keys
(``SECRET_KEY_PREVIOUS``) still decrypt, until ``google-video secrets reencrypt`` has moved
every stored value to the current one (``core.reencrypt``).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"google-video:secrets:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class UnreadableSecretError(ValueError):
    """A stored secret that neither the current nor a previous SECRET_KEY decrypts (a
    database restored under another key): the operator's problem, never the request's."""


class SecretBox:
    """``SecretBox(current, *previous)``: Fernet under keys derived from each SECRET_KEY."""

    def __init__(self, secret_key: str, *previous: str) -> None:
        self._current = _fernet(secret_key)
        self._any = MultiFernet([self._current, *(_fernet(k) for k in previous)])

    def encrypt(self, plain: str) -> str:
        """Ciphertext under the current key; ``""`` stays ``""`` (no secret set)."""
        return self._current.encrypt(plain.encode()).decode() if plain else ""

    def decrypt(self, token: str) -> str:
        """The plaintext of ``token`` under the current or a previous key; raises
        `UnreadableSecretError` (a ``ValueError``) when none of them opens it."""
        if not token:
            return ""
        try:
            return self._any.decrypt(token.encode()).decode()
        except InvalidToken:
            raise UnreadableSecretError(
                "stored secret cannot be decrypted with this SECRET_KEY"
            ) from None

    def is_current(self, token: str) -> bool:
        """True if ``token`` is empty or already encrypted under the current key."""
        if not token:
            return True
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def reencrypt(self, token: str) -> str:
        """``token`` encrypted under the current key (the same plaintext); raises
        ``ValueError`` like :meth:`decrypt`."""
        return self.encrypt(self.decrypt(token))


MASK_SHOWS_FROM = 16


MASK = "****"


def mask(secret: str) -> str:
    """``secret`` for display: ``""`` if unset, ``"****"`` plus its last 4 characters when
    it has at least 16, otherwise ``"****"`` alone (a short key is never partly shown)."""
    if not secret:
        return ""
    return MASK + secret[-4:] if len(secret) >= MASK_SHOWS_FROM else MASK
