"""Lock-out after repeated failed sign-ins (pure).

Two counters: one per user name, one per client address. Each counts the failures
inside a window (15 minutes); reaching the limit (5 for a user, 20 for an address:
an office behind one NAT address shares it) locks that key for 15 minutes. A
successful sign-in clears its user's counter; a lock ends by itself at
``locked_until``, or earlier when an admin runs ``dialer user unlock``. While locked
no password is checked at all, so a guesser learns nothing and costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Scope(StrEnum):
    USER = "user"
    ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    user_failures: int = 5
    address_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)

    def limit(self, scope: Scope) -> int:
        return self.user_failures if scope is Scope.USER else self.address_failures


@dataclass(frozen=True, slots=True)
class FailureCount:
    """The stored state of one key: failures since ``window_start``, and a lock."""

    failures: int
    window_start: datetime
    locked_until: datetime | None = None


def locked_until(state: FailureCount | None, now: datetime) -> datetime | None:
    """The end of the lock in force at ``now``, or None."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return None
    return state.locked_until


def after_failure(
    state: FailureCount | None, now: datetime, scope: Scope, policy: LockoutPolicy
) -> FailureCount:
    """The state after one more failure at ``now``."""
    if (
        state is None
        or now - state.window_start >= policy.window
        or (state.locked_until is not None and state.locked_until <= now)
    ):
        # a new window: an old window's failures, or an expired lock's, no longer count
        state = FailureCount(0, now)
    failures = state.failures + 1
    lock = now + policy.lock_for if failures >= policy.limit(scope) else state.locked_until
    return replace(state, failures=failures, locked_until=lock)
