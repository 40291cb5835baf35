"""Agent tokens: made once, shown once, kept only as a hash; the token names its gateway."""

from __future__ import annotations

import hashlib
import secrets

# A prefix makes a leaked token recognisable (secret scanners, logs) without revealing it.
PREFIX = "gwt_"


def make_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()
