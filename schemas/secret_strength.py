"""What production accepts as a secret: the rules behind the guard in ``schemas.settings``.

A value is refused when it is one the project itself ships (``SHIPPED``: the dev and
compose defaults), carries a placeholder marker (``MARKERS``, compared lower-case without
separators, so ``CHANGE_ME_TO_64_RANDOM_HEX_CHARACTERS`` and ``change-me`` both match), or,
for the secrets this service generates and checks itself (``SECRET_KEY``, ``ADMIN_KEY``),
is too weak:

- shorter than ``MIN_LENGTH`` (16) characters;
- under ``MIN_BITS`` (64) bits by the Shannon measure: the length times the entropy per
  character of the value's own character frequencies (``aaaaaaaaaaaaaaaa``: 0 bits, 16
  distinct characters: 64, ``openssl rand -hex 32``: about 250);
- a repetition of a shorter string (``abcdabcdabcdabcd``, which the measure above rates by
  its characters alone).

The measure bounds what a value *can* hold, not what it does (``0123456789abcdef`` passes):
it catches typed placeholders, not a careless human. Generate secrets with
``openssl rand -hex 32`` or ``python -c 'import secrets; print(secrets.token_urlsafe(32))'``.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from zxcvbn import zxcvbn

MIN_LENGTH = 16
MIN_BITS = 64.0
# zxcvbn's estimate of an attacker's guesses, as log10: 20 ≈ 66 bits. `openssl rand -hex 32`
# scores about 63; a word, a sequence or a keyboard run stays far below.
MIN_GUESSES_LOG10 = 20
MAX_ESTIMATED = 100  # zxcvbn slows down on long inputs; a prefix this long is enough

# The values the project ships for development (`make dev`, docker-compose.yml, the
# simulator): published, so never a production secret. tests/unit/test_shipped_placeholders
# finds every value in the shipped files and checks each one is refused.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105
DEV_ADMIN_KEY = "gv_local_dev_admin_key_change_me_0001"
SHIPPED = frozenset(
    {
        DEV_SECRET_KEY,
        DEV_ADMIN_KEY,
        # docker-compose.yml (a local stack with ENVIRONMENT=development)
        "compose-local-secret-key-0123456789",
        "gv_compose_admin_key_0123456789",
        "minio-local",
        "minio-local-secret",
        "google_video",
        # the simulator's default key (cli/main.py, simulator/main.py, compose)
        "sim-key",
        "sim-test-key",  # tests/integration/stack.py
    }
)
MARKERS = ("changeme", "replaceme", "placeholder", "example", "insecure", "yoursecret")
# Whole values that say "nothing set" (compared like the markers).
_EMPTY_WORDS = frozenset({"", "secret", "password", "dev", "development", "test", "none", "null"})


def placeholder(value: str) -> bool:
    """True if ``value`` is a shipped value or reads as a placeholder."""
    folded = re.sub(r"[^a-z0-9]", "", value.lower())
    return value in SHIPPED or folded in _EMPTY_WORDS or any(marker in folded for marker in MARKERS)


def shannon_bits(value: str) -> float:
    """``len(value)`` times the Shannon entropy (bits) of the value's character frequencies."""
    if not value:
        return 0.0
    counts = Counter(value).values()
    total = len(value)
    return -sum(n * math.log2(n / total) for n in counts)


def repeated(value: str) -> bool:
    """True if ``value`` is a shorter string repeated (``abab``, ``xxxx``)."""
    return len(value) > 1 and value in (value + value)[1:-1]


def weakness(value: str) -> str | None:
    """Why ``value`` is not acceptable as a generated secret, or None if it is."""
    if placeholder(value):
        return "is a placeholder or a value the project ships"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    if repeated(value):
        return "repeats a shorter string"
    bits = shannon_bits(value)
    if bits < MIN_BITS:
        return f"has too little entropy ({bits:.0f} of {MIN_BITS:.0f} bits, Shannon measure)"
    # Shannon's measure is blind to sequences, keyboard runs and words
    # (0123456789abcdef, password1234…, correcthorsebatterystaple): zxcvbn sees them.
    guesses = float(zxcvbn(value[:MAX_ESTIMATED])["guesses_log10"])
    if guesses < MIN_GUESSES_LOG10:
        return (
            f"is guessable (about 10^{guesses:.0f} guesses by zxcvbn; needs 10^{MIN_GUESSES_LOG10})"
        )
    return None
