"""The pure parts of identity: names, password hashing, lock-out, session tokens and the
authorization decision (the whole role matrix)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from identity.access import GRANTS, Action, Scope, decide
from identity.lockout import FailureCount, LockoutPolicy, after_failure, locked_until
from identity.lockout import Scope as LockScope
from identity.model import Principal, Role
from identity.names import BadIdentityName, check_agent_id, check_user_name
from identity.passwords import PasswordHasher, WeakPassword, check_password
from identity.sessions import csrf_matches, csrf_token, new_session_id, session_digest

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
FAST = PasswordHasher(log_n=10)


@pytest.mark.parametrize("name", ["王主管", "ann", "li.na@site", "张-3", "a" * 64])
def test_user_names_of_any_script(name: str) -> None:
    assert check_user_name(name) == name


@pytest.mark.parametrize("name", ["", " ann", "ann bob", "-ann", "_x", "a/b", "a" * 65, "x\n"])
def test_bad_user_names_say_why(name: str) -> None:
    with pytest.raises(BadIdentityName, match="user name"):
        check_user_name(name)


def test_user_names_are_stored_in_one_normal_form() -> None:
    decomposed = "e\u0301mile"  # e + combining acute accent
    assert check_user_name(decomposed) == "\u00e9mile"


def test_agent_ids_stay_ascii() -> None:
    assert check_agent_id("701") == "701"
    with pytest.raises(BadIdentityName, match="agent id"):
        check_agent_id("王主管")


def test_password_hash_round_trip_and_format() -> None:
    stored = PasswordHasher().hash("correct horse battery")  # the documented parameters
    assert stored.startswith("$scrypt$ln=15,r=8,p=1$")
    assert "correct" not in stored
    assert PasswordHasher().verify("correct horse battery", stored)
    assert not PasswordHasher().verify("correct horse batterY", stored)
    # the salt differs, so the same password never gives the same row
    assert PasswordHasher().hash("correct horse battery") != stored


def test_parameters_travel_with_the_hash() -> None:
    old = FAST.hash("密码很长很长的一句话")
    assert PasswordHasher().verify("密码很长很长的一句话", old)  # verified with its own cost
    assert PasswordHasher().needs_rehash(old)
    assert not FAST.needs_rehash(old)


@pytest.mark.parametrize(
    "stored",
    ["", "plain", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA", "$scrypt$ln=10,r=8,p=1$!!$AAAA"],
)
def test_malformed_or_tampered_hashes_never_match(stored: str) -> None:
    assert not FAST.verify("anything at all", stored)


@pytest.mark.parametrize("password", ["short", " leading space", "x" * 1025])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password)


def test_lockout_after_the_limit_and_its_expiry() -> None:
    policy = LockoutPolicy(user_failures=3, window=timedelta(minutes=15))
    state = None
    for i in range(2):
        state = after_failure(state, T0 + timedelta(seconds=i), LockScope.USER, policy)
        assert locked_until(state, T0 + timedelta(seconds=i)) is None
    state = after_failure(state, T0 + timedelta(seconds=2), LockScope.USER, policy)
    until = T0 + timedelta(seconds=2) + policy.lock_for
    assert locked_until(state, T0 + timedelta(seconds=3)) == until
    assert locked_until(state, until - timedelta(seconds=1)) == until
    assert locked_until(state, until) is None  # ends by itself
    # after the lock, counting starts again from one
    again = after_failure(state, until + timedelta(seconds=1), LockScope.USER, policy)
    assert (again.failures, again.locked_until) == (1, None)


def test_old_failures_leave_the_window() -> None:
    policy = LockoutPolicy(user_failures=3, window=timedelta(minutes=15))
    state = FailureCount(2, T0)
    later = after_failure(state, T0 + timedelta(minutes=16), LockScope.USER, policy)
    assert (later.failures, later.locked_until) == (1, None)


def test_addresses_have_a_higher_limit_than_users() -> None:
    policy = LockoutPolicy()
    state = None
    for _ in range(policy.user_failures):
        state = after_failure(state, T0, LockScope.ADDRESS, policy)
    assert locked_until(state, T0) is None
    for _ in range(policy.address_failures - policy.user_failures):
        state = after_failure(state, T0, LockScope.ADDRESS, policy)
    assert locked_until(state, T0) == T0 + policy.lock_for


def test_csrf_token_is_bound_to_its_session() -> None:
    one, two = new_session_id(), new_session_id()
    assert one != two and len(one) >= 43
    assert csrf_matches(one, csrf_token(one))
    assert not csrf_matches(two, csrf_token(one))
    assert not csrf_matches(one, "")
    assert session_digest(one) != one and len(session_digest(one)) == 64


ANN = Principal("ann", Role.AGENT, agent_id="701")
NOBODY = Principal("bob", Role.AGENT)  # an agent user without an agent id
SAM = Principal("王主管", Role.SUPERVISOR)
CAROL = Principal("carol", Role.COMPLIANCE)
ROOT = Principal("root", Role.ADMIN)

A = Action
# the expected answer for every role and action; "own" means: only as its own agent
MATRIX: dict[Action, tuple[str, str, str, str]] = {
    #                                 admin  compliance supervisor agent
    A.RECORDINGS_SEARCH: ("no", "yes", "yes", "no"),
    A.RECORDINGS_PLAY: ("no", "yes", "yes", "own"),
    A.RECORDINGS_EXPORT: ("no", "yes", "no", "no"),
    A.RECORDINGS_EXPORT_PLAINTEXT: ("no", "yes", "no", "no"),
    A.RECORDINGS_INGEST: ("yes", "no", "no", "no"),
    A.COMPLAINTS_READ: ("no", "yes", "yes", "no"),
    A.COMPLAINTS_WRITE: ("no", "yes", "no", "no"),
    A.STORE_MAINTAIN: ("yes", "no", "no", "no"),
    A.AUDIT_READ: ("yes", "yes", "no", "no"),
    A.USERS_MANAGE: ("yes", "no", "no", "no"),
    A.AGENT_ACT: ("yes", "no", "yes", "own"),
    A.CAMPAIGNS_READ: ("yes", "yes", "yes", "no"),
    A.CAMPAIGNS_CONTROL: ("yes", "no", "yes", "no"),
    A.QUALITY_READ: ("no", "yes", "yes", "own"),
    A.QUALITY_SCORE: ("no", "yes", "yes", "no"),
    A.QUALITY_DISPUTE: ("no", "no", "no", "own"),
    A.QUALITY_RESOLVE: ("no", "yes", "no", "no"),
}


def test_the_matrix_covers_every_action() -> None:
    assert set(MATRIX) == set(Action)


@pytest.mark.parametrize("action", list(Action))
def test_role_matrix(action: Action) -> None:
    admin, compliance, supervisor, agent = MATRIX[action]
    for who, expected in ((ROOT, admin), (CAROL, compliance), (SAM, supervisor)):
        assert expected in ("yes", "no")
        for owner in (None, "701", "702"):
            decision = decide(who, action, owner)
            assert decision.allowed is (expected == "yes"), (who.role, action, owner)
    if agent == "own":
        assert decide(ANN, action, "701").allowed
        assert decide(ANN, action).allowed  # the right in general
        assert decide(ANN, action, "701").scope is Scope.OWN
        refused = decide(ANN, action, "702")
        assert not refused.allowed and "only as agent 701" in refused.reason
        assert not decide(NOBODY, action, "").allowed
        assert not decide(NOBODY, action).allowed
    else:
        assert not decide(ANN, action, "701").allowed


def test_refusals_name_the_role_and_the_action() -> None:
    decision = decide(SAM, Action.RECORDINGS_EXPORT)
    assert not decision.allowed
    assert decision.reason == "supervisor '王主管' may not export evidence"


def test_every_role_has_grants() -> None:
    assert set(GRANTS) == set(Role)
