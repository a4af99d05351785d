"""Login session ids and their CSRF tokens (pure).

A session id is 32 random bytes (URL-safe text) that only the browser's cookie holds:
the database keeps its SHA-256, so a copy of the table opens no session. The CSRF token
of a session is derived from its id (HMAC-SHA-256 keyed by the id, a fixed label):
bound to that session, nothing more to store, and useless to a page on another site,
which can neither read the cookie nor the token.

Lifetimes: a session ends 12 hours after sign-in (a shift) or after 30 minutes unused,
whichever comes first, or when signed out or revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

SESSION_BYTES = 32
_CSRF_LABEL = b"callgate csrf v1"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    lifetime: timedelta = timedelta(hours=12)
    idle_timeout: timedelta = timedelta(minutes=30)
    # last use is written at most this often (not on every request)
    touch_every: timedelta = timedelta(seconds=60)


def new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_BYTES)


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_matches(session_id: str, given: str) -> bool:
    """True when ``given`` is this session's CSRF token (constant-time comparison)."""
    return hmac.compare_digest(csrf_token(session_id).encode(), given.encode())
