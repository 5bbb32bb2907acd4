"""How strong a production secret is: length and estimated entropy (used by ``core.config``'s production checks)."""

from __future__ import annotations

import math

#: Production secrets must be at least this long and carry at least this much estimated entropy
#: (Shannon entropy of the secret's own characters times its length: 24 random URL-safe characters give ~100 bits,
#: a repeated word or a keyboard run far less).
MIN_SECRET_LENGTH = 24
MIN_SECRET_BITS = 96.0


def secret_bits(secret: str) -> float:
    """Estimated entropy of ``secret`` in bits: the Shannon entropy of its character distribution × its length.

    A lower bound for random secrets is not claimed; it is a screen that refuses what a person would type
    ("changeme", "aaaa…", "passwordpassword…", "0123456789…") and accepts ``secrets.token_urlsafe(24)`` and longer.
    """
    if not secret:
        return 0.0
    counts: dict[str, int] = {}
    for char in secret:
        counts[char] = counts.get(char, 0) + 1
    n = len(secret)
    per_char = -sum((c / n) * math.log2(c / n) for c in counts.values())
    return per_char * n


def weak_secret_reason(name: str, secret: str, *, dev_default: str | None = None) -> str | None:
    """Why ``secret`` (setting ``name``) is too weak for production, or None. Never includes the secret."""
    if dev_default is not None and secret == dev_default:
        return f"{name} is the development default; set a secret of your own"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"{name} is shorter than {MIN_SECRET_LENGTH} characters"
    if secret_bits(secret) < MIN_SECRET_BITS:
        return (
            f"{name} is too predictable (estimated {secret_bits(secret):.0f} bits, at least {MIN_SECRET_BITS:.0f} "
            "needed); generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return None
