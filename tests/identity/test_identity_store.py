"""The identity store on SQLite and PostgreSQL: users (Chinese names too), passwords,
sign-in and lock-out, sessions (expiry, idle timeout, revocation, sign-out), API tokens,
and the audit entries each change leaves."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from compliance.clock import ManualClock
from identity.model import (
    ActiveSession,
    Principal,
    RefusalReason,
    Role,
    SignedIn,
    SignInRefused,
    SignInResult,
)
from identity.schema import sessions, users
from identity.store import BadIdentityInput, IdentityStore, UnknownUser, UserExists
from recordings import audit

pytestmark = pytest.mark.timeout(60)
ADMIN = Principal("root", Role.ADMIN)
PASSWORD = "春天的第一通电话 2026"
ADDRESS = "10.1.2.3"


def signed_in(result: SignInResult) -> SignedIn:
    assert isinstance(result, SignedIn), result
    return result


def refused(result: SignInResult) -> SignInRefused:
    assert isinstance(result, SignInRefused), result
    return result


async def active(store: IdentityStore, session_id: str) -> ActiveSession:
    found = await store.resolve_session(session_id)
    assert found is not None
    return found


async def test_a_chinese_supervisor_signs_in_and_out(store: IdentityStore) -> None:
    user = await store.add_user(ADMIN, "王主管", Role.SUPERVISOR, password=PASSWORD)
    assert (user.name, user.role, user.has_password) == ("王主管", Role.SUPERVISOR, True)
    session = signed_in(await store.sign_in("王主管", PASSWORD, ADDRESS))
    assert session.principal == Principal("王主管", Role.SUPERVISOR)
    found = await active(store, session.session_id)
    assert found.principal.name == "王主管"
    assert store.check_csrf(session.session_id, found.csrf_token)
    assert found.csrf_token == session.csrf_token
    assert not store.check_csrf(session.session_id, "0" * 64)
    # the database holds neither the password nor the session id
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(users.c.password_hash))).scalar_one()
        sids = (await conn.execute(select(sessions.c.session_sha256))).scalars().all()
    assert PASSWORD not in stored and stored.startswith("$scrypt$")
    assert session.session_id not in sids
    assert await store.sign_out(session.session_id)
    assert await store.resolve_session(session.session_id) is None
    assert not await store.sign_out(session.session_id)  # already ended


async def test_wrong_password_and_unknown_user_get_the_same_answer(store: IdentityStore) -> None:
    await store.add_user(ADMIN, "ann", Role.AGENT, agent_id="701", password=PASSWORD)
    wrong = refused(await store.sign_in("ann", PASSWORD + "x", ADDRESS))
    unknown = refused(await store.sign_in("nobody", PASSWORD, ADDRESS))
    assert wrong == unknown == SignInRefused(RefusalReason.WRONG_CREDENTIALS)
    assert wrong.message == "wrong user name or password"
    # a token-only user has no password to sign in with
    await store.add_user(ADMIN, "pbx", Role.ADMIN)
    refused(await store.sign_in("pbx", "", ADDRESS))


async def test_lockout_per_user_and_its_expiry(store: IdentityStore, clock: ManualClock) -> None:
    await store.add_user(ADMIN, "ann", Role.AGENT, agent_id="701", password=PASSWORD)
    limit = store.lockout.user_failures
    for _ in range(limit - 1):
        assert refused(await store.sign_in("ann", "wrong password", ADDRESS)).locked_until is None
    last = refused(await store.sign_in("ann", "wrong password", "10.9.9.9"))
    until = clock.wall() + store.lockout.lock_for
    assert last.locked_until == until
    # locked: even the right password is not checked
    locked = refused(await store.sign_in("ann", PASSWORD, "10.7.7.7"))
    assert (locked.reason, locked.locked_until) == (RefusalReason.USER_LOCKED, until)
    assert "locked until" in locked.message
    clock.advance(14 * 60 + 59)
    refused(await store.sign_in("ann", PASSWORD, ADDRESS))
    clock.advance(1)  # the lock has ended by itself
    signed_in(await store.sign_in("ann", PASSWORD, ADDRESS))
    # a success clears the counter: one more failure does not lock again
    assert refused(await store.sign_in("ann", "wrong password", ADDRESS)).locked_until is None


async def test_lockout_per_address_and_an_admin_reset(store: IdentityStore) -> None:
    await store.add_user(ADMIN, "ann", Role.AGENT, agent_id="701", password=PASSWORD)
    for i in range(store.lockout.address_failures):
        refused(await store.sign_in(f"guess{i}", "wrong password", ADDRESS))
    blocked = refused(await store.sign_in("ann", PASSWORD, ADDRESS))
    assert blocked.reason is RefusalReason.ADDRESS_LOCKED
    signed_in(await store.sign_in("ann", PASSWORD, "10.1.2.4"))  # another address works
    assert await store.reset_lockout(ADMIN, address=ADDRESS) == 1
    signed_in(await store.sign_in("ann", PASSWORD, ADDRESS))


async def test_user_lock_is_cleared_by_unlock(store: IdentityStore) -> None:
    await store.add_user(ADMIN, "ann", Role.AGENT, agent_id="701", password=PASSWORD)
    for _ in range(store.lockout.user_failures):
        refused(await store.sign_in("ann", "wrong password"))
    assert refused(await store.sign_in("ann", PASSWORD)).reason is RefusalReason.USER_LOCKED
    assert await store.reset_lockout(ADMIN, name="ann") == 1
    signed_in(await store.sign_in("ann", PASSWORD))


async def test_sessions_expire_idle_and_absolute(store: IdentityStore, clock: ManualClock) -> None:
    await store.add_user(ADMIN, "ann", Role.AGENT, agent_id="701", password=PASSWORD)
    policy = store.session_policy
    idle = signed_in(await store.sign_in("ann", PASSWORD))
    clock.advance(policy.idle_timeout.total_seconds() - 1)
    deadline = (await active(store, idle.session_id)).idle_deadline
    assert deadline == clock.wall() + policy.idle_timeout
    clock.advance(policy.idle_timeout.total_seconds())  # unused for the whole timeout
    assert await store.resolve_session(idle.session_id) is None

    busy = signed_in(await store.sign_in("ann", PASSWORD))
    assert busy.expires_at == clock.wall() + policy.lifetime
    steps = int(policy.lifetime / policy.touch_every)
    for _ in range(steps - 1):  # used every minute: the idle timeout never bites
        clock.advance(policy.touch_every.total_seconds())
        await active(store, busy.session_id)
    clock.advance(policy.touch_every.total_seconds())  # the shift is over
    assert await store.resolve_session(busy.session_id) is None
    assert await store.resolve_session("") is None
    assert await store.resolve_session("x" * 500) is None


async def test_changes_to_a_user_end_its_sessions(store: IdentityStore) -> None:
    await store.add_user(ADMIN, "ann", Role.AGENT, agent_id="701", password=PASSWORD)
    other = await store.add_user(ADMIN, "bob", Role.AGENT, agent_id="702", password=PASSWORD)
    bob = signed_in(await store.sign_in(other.name, PASSWORD))

    first = signed_in(await store.sign_in("ann", PASSWORD))
    await store.set_password(ADMIN, "ann", "a new password 2")
    assert await store.resolve_session(first.session_id) is None
    refused(await store.sign_in("ann", PASSWORD))

    second = signed_in(await store.sign_in("ann", "a new password 2"))
    user = await store.set_role(ADMIN, "ann", Role.SUPERVISOR)
    assert user.role is Role.SUPERVISOR
    assert await store.resolve_session(second.session_id) is None

    third = signed_in(await store.sign_in("ann", "a new password 2"))
    token = (await store.issue_token(ADMIN, "ann"))[1]
    await store.set_active(ADMIN, "ann", False)
    assert await store.resolve_session(third.session_id) is None
    assert await store.authenticate(token) is None
    refused(await store.sign_in("ann", "a new password 2"))
    await store.set_active(ADMIN, "ann", True)
    assert await store.authenticate(token) == Principal("ann", Role.SUPERVISOR, "701")

    fourth = signed_in(await store.sign_in("ann", "a new password 2"))
    assert await store.revoke_sessions(ADMIN, "ann") == 1
    assert await store.resolve_session(fourth.session_id) is None
    await active(store, bob.session_id)  # another user's session is untouched


async def test_create_session_without_password(store: IdentityStore) -> None:
    await store.add_user(ADMIN, "王主管", Role.SUPERVISOR)
    session = await store.create_session("王主管", address=ADDRESS)
    assert (await active(store, session.session_id)).principal.role is Role.SUPERVISOR
    with pytest.raises(UnknownUser):
        await store.create_session("nobody")


async def test_bad_input_is_refused_with_the_reason(store: IdentityStore) -> None:
    with pytest.raises(BadIdentityInput, match="user name"):
        await store.add_user(ADMIN, "../x", Role.ADMIN)
    with pytest.raises(BadIdentityInput, match="at least 8"):
        await store.add_user(ADMIN, "ann", Role.ADMIN, password="short")
    with pytest.raises(BadIdentityInput, match="agent id"):
        await store.add_user(ADMIN, "王小明", Role.AGENT)  # the name cannot be the agent id
    agent = await store.add_user(ADMIN, "王小明", Role.AGENT, agent_id="801")
    assert agent.agent_id == "801"
    assert (await store.add_user(ADMIN, "ann", Role.AGENT)).agent_id == "ann"
    with pytest.raises(UserExists):
        await store.add_user(ADMIN, "ann", Role.ADMIN)
    with pytest.raises(UnknownUser):
        await store.set_role(ADMIN, "nobody", Role.ADMIN)
    assert [u.name for u in await store.list_users()] == sorted(["ann", "王小明"])


async def test_tokens_are_stored_hashed_and_revocable(store: IdentityStore) -> None:
    assert not await store.has_users()
    await store.add_user(ADMIN, "pbx", Role.ADMIN)
    assert await store.has_users()
    tid, token = await store.issue_token(ADMIN, "pbx", label="inbound")
    assert await store.authenticate(token) == Principal("pbx", Role.ADMIN)
    listed = await store.list_tokens()
    assert [(r["id"], r["name"], r["label"]) for r in listed] == [(tid, "pbx", "inbound")]
    assert token not in json.dumps([str(r) for r in listed])
    await store.revoke_token(ADMIN, tid)
    assert await store.authenticate(token) is None
    with pytest.raises(UnknownUser):
        await store.revoke_token(ADMIN, tid)


async def test_changes_and_sign_ins_are_audited(store: IdentityStore) -> None:
    await store.add_user(ADMIN, "王主管", Role.SUPERVISOR, password=PASSWORD)
    refused(await store.sign_in("王主管", "wrong password", ADDRESS))
    session = signed_in(await store.sign_in("王主管", PASSWORD, ADDRESS))
    await store.sign_out(session.session_id)
    entries = await audit.tail(store.engine, 10)
    seen = [(e.actor, e.action, e.outcome.value) for e in entries]
    assert seen == [
        ("root", "user.add", "ok"),
        ("王主管", "sign_in", "denied"),
        ("王主管", "sign_in", "ok"),
        ("王主管", "sign_out", "ok"),
    ]
    assert all(PASSWORD not in e.detail for e in entries)
    assert await audit.verify(store.engine) == []
