"""The identity store (SQL): users, API tokens, passwords, sign-in, sessions, lock-out.

Decisions are made by the pure modules (``passwords``, ``lockout``, ``sessions``,
``access``); this module reads and writes their state. Every change to a user, a token
or a session and every sign-in (allowed or refused) is written to the access audit log
(``AuditTrail``, the hash-chained ``access_audit``) in the same transaction.

API tokens: 32 random bytes shown once; only their SHA-256 is stored. Passwords: scrypt
(``identity.passwords``), hashed in a worker thread, at most two at a time (32 MiB each).
A changed password, role or a disabled user ends that user's sessions.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.clock import SYSTEM_CLOCK, Clock
from identity.lockout import FailureCount, LockoutPolicy, Scope, after_failure, locked_until
from identity.model import (
    ActiveSession,
    Principal,
    RefusalReason,
    Role,
    SignedIn,
    SignInRefused,
    SignInResult,
    User,
)
from identity.names import BadIdentityName, check_agent_id, check_user_name, is_agent_id
from identity.passwords import PasswordHasher, WeakPassword, check_password
from identity.schema import (
    open_engine,
    reader,
    sessions,
    sign_in_failures,
    tokens,
    users,
)
from identity.sessions import (
    SessionPolicy,
    csrf_matches,
    csrf_token,
    new_session_id,
    session_digest,
)
from migrations import ensure_current

TOKEN_BYTES = 32
MAX_LABEL = 64
MAX_ADDRESS = 64


class IdentityError(Exception):
    """Root of the identity errors; ``status`` is the HTTP status it maps to."""

    status: ClassVar[int] = 500


class BadIdentityInput(IdentityError):
    status = 400


class UnknownUser(IdentityError):
    status = 404


class UserExists(IdentityError):
    status = 409


class AuditTrail(Protocol):
    """The access audit log: one entry inside the caller's transaction."""

    async def record(
        self,
        conn: AsyncConnection,
        *,
        actor: str,
        role: str,
        action: str,
        target: str,
        reason: str,
        denied: bool = False,
        detail: Mapping[str, Any] | None = None,
    ) -> None: ...


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _name(name: str) -> str:
    try:
        return check_user_name(name)
    except BadIdentityName as exc:
        raise BadIdentityInput(str(exc)) from exc


def _user(row: Any) -> User:
    return User(
        int(row.id),
        row.name,
        Role(row.role),
        row.agent_id,
        bool(row.active),
        row.password_hash is not None,
    )


class IdentityStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        audit: AuditTrail | None = None,
        clock: Clock | None = None,
        hasher: PasswordHasher | None = None,
        lockout: LockoutPolicy | None = None,
        session_policy: SessionPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.reader = reader(engine)
        self.audit = audit
        self.clock = clock or SYSTEM_CLOCK
        self.hasher = hasher or PasswordHasher()
        self.lockout = lockout or LockoutPolicy()
        self.session_policy = session_policy or SessionPolicy()
        self._hashing = asyncio.Semaphore(2)
        self._dummy_hash: str | None = None
        self._has_users = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        schema: str | None = None,
        audit: AuditTrail | None = None,
        clock: Clock | None = None,
        create: bool = True,
    ) -> IdentityStore:
        """Connect; a new empty database is brought to the schema's head when ``create``, an
        older one refused (``migrations.ensure_current``). ``aclose`` releases it."""
        engine = open_engine(url, schema=schema)
        try:
            await ensure_current(engine, create_empty=create)
        except Exception:
            await engine.dispose()
            raise
        return cls(engine, audit=audit, clock=clock)

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def _audit(
        self,
        conn: AsyncConnection,
        who: Principal | None,
        action: str,
        target: str,
        reason: str,
        *,
        actor: str = "",
        denied: bool = False,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        if self.audit is None:
            return
        await self.audit.record(
            conn,
            actor=who.name if who is not None else actor,
            role=who.role.value if who is not None else "-",
            action=action,
            target=target,
            reason=reason,
            denied=denied,
            detail=detail,
        )

    async def _hash(self, password: str) -> str:
        try:
            check_password(password)
        except WeakPassword as exc:
            raise BadIdentityInput(str(exc)) from exc
        async with self._hashing:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, password: str, stored: str | None) -> bool:
        async with self._hashing:
            if stored is None:
                # the same work as a real check: timing does not tell who exists
                if self._dummy_hash is None:
                    self._dummy_hash = await asyncio.to_thread(
                        self.hasher.hash, secrets.token_urlsafe(16)
                    )
                await asyncio.to_thread(self.hasher.verify, password, self._dummy_hash)
                return False
            return await asyncio.to_thread(self.hasher.verify, password, stored)

    # -- users --------------------------------------------------------------------------------

    async def add_user(
        self,
        who: Principal,
        name: str,
        role: Role,
        *,
        agent_id: str = "",
        password: str | None = None,
    ) -> User:
        """A new active user. An agent's agent id defaults to its name when that is a valid
        agent id (ASCII); a name such as ``王小明`` needs an explicit one."""
        name = _name(name)
        if role is Role.AGENT and not agent_id:
            if not is_agent_id(name):
                raise BadIdentityInput(
                    f"user {name}: an agent needs an agent id of A-Z a-z 0-9 _ . : @ - "
                    "(--agent-id), the name cannot serve as one"
                )
            agent_id = name
        if agent_id:
            try:
                check_agent_id(agent_id)
            except BadIdentityName as exc:
                raise BadIdentityInput(str(exc)) from exc
        hashed = None if password is None else await self._hash(password)
        now = self.clock.wall()
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    users.insert()
                    .values(
                        name=name,
                        role=role.value,
                        agent_id=agent_id,
                        active=True,
                        created_at=now,
                        password_hash=hashed,
                        password_changed_at=None if hashed is None else now,
                    )
                    .returning(users.c.id)
                )
                uid = int(result.scalar_one())
                await self._audit(
                    conn,
                    who,
                    "user.add",
                    f"user:{name}",
                    "account created",
                    detail={
                        "role": role.value,
                        "agent_id": agent_id,
                        "password": hashed is not None,
                    },
                )
        except IntegrityError as exc:
            raise UserExists(f"user {name} already exists") from exc
        self._has_users = True
        return User(uid, name, role, agent_id, True, hashed is not None)

    async def get_user(self, name: str) -> User | None:
        try:
            name = check_user_name(name)
        except BadIdentityName:
            return None
        async with self.reader.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.name == name))).first()
        return None if row is None else _user(row)

    async def list_users(self) -> list[User]:
        async with self.reader.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.name))).all()
        return [_user(r) for r in rows]

    async def has_users(self) -> bool:
        """Whether any user exists (once true, stays true for this process)."""
        if not self._has_users:
            async with self.reader.connect() as conn:
                count = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
            self._has_users = int(count) > 0
        return self._has_users

    async def _change_user(
        self,
        who: Principal,
        name: str,
        values: Mapping[str, Any],
        action: str,
        reason: str,
        detail: Mapping[str, Any],
        *,
        end_sessions: bool,
    ) -> User:
        name = _name(name)
        now = self.clock.wall()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(select(users).where(users.c.name == name).with_for_update())
            ).first()
            if row is None:
                raise UnknownUser(f"no user {name}")
            await conn.execute(update(users).where(users.c.id == row.id).values(**values))
            ended = 0
            if end_sessions:
                ended = await self._end_sessions(conn, int(row.id), now)
            await self._audit(
                conn,
                who,
                action,
                f"user:{name}",
                reason,
                detail={**detail, "sessions_ended": ended},
            )
            fresh = (await conn.execute(select(users).where(users.c.id == row.id))).one()
        return _user(fresh)

    async def set_password(self, who: Principal, name: str, password: str) -> User:
        """Set or reset a password; the user's sessions end."""
        hashed = await self._hash(password)
        return await self._change_user(
            who,
            name,
            {"password_hash": hashed, "password_changed_at": self.clock.wall()},
            "user.password",
            "password set",
            {},
            end_sessions=True,
        )

    async def set_role(
        self, who: Principal, name: str, role: Role, *, agent_id: str | None = None
    ) -> User:
        """Give a user another role (and agent id); the user's sessions end."""
        values: dict[str, Any] = {"role": role.value}
        if agent_id is not None:
            if agent_id:
                try:
                    check_agent_id(agent_id)
                except BadIdentityName as exc:
                    raise BadIdentityInput(str(exc)) from exc
            values["agent_id"] = agent_id
        current = await self.get_user(name)
        if current is None:
            raise UnknownUser(f"no user {name}")
        if role is Role.AGENT and not values.get("agent_id", current.agent_id):
            if not is_agent_id(current.name):
                raise BadIdentityInput(f"user {current.name}: an agent needs --agent-id")
            values["agent_id"] = current.name
        return await self._change_user(
            who,
            name,
            values,
            "user.role",
            "role changed",
            {"role": role.value, "agent_id": values.get("agent_id", current.agent_id)},
            end_sessions=True,
        )

    async def set_active(self, who: Principal, name: str, active: bool) -> User:
        """Enable or disable a user: a disabled user's tokens and sessions stop working."""
        return await self._change_user(
            who,
            name,
            {"active": active},
            "user.enable" if active else "user.disable",
            "account enabled" if active else "account disabled",
            {},
            end_sessions=not active,
        )

    async def reset_lockout(
        self, who: Principal, *, name: str | None = None, address: str | None = None
    ) -> int:
        """Clear the failed sign-ins of a user name and/or a client address."""
        keys: list[tuple[Scope, str]] = []
        if name is not None:
            keys.append((Scope.USER, _name(name)))
        if address is not None:
            keys.append((Scope.ADDRESS, address[:MAX_ADDRESS]))
        cleared = 0
        async with self.engine.begin() as conn:
            for scope, key in keys:
                result = await conn.execute(
                    delete(sign_in_failures).where(
                        sign_in_failures.c.scope == scope.value, sign_in_failures.c.key == key
                    )
                )
                cleared += int(result.rowcount)
                await self._audit(
                    conn, who, "lockout.reset", f"{scope.value}:{key}", "lock-out cleared"
                )
        return cleared

    # -- API tokens ---------------------------------------------------------------------------

    async def issue_token(
        self, who: Principal, user_name: str, *, label: str = ""
    ) -> tuple[int, str]:
        """A new API token for a user: returns (token id, token). Only its SHA-256 is stored;
        the token itself is shown this once."""
        if len(label) > MAX_LABEL or "\x00" in label:
            raise BadIdentityInput(f"label: at most {MAX_LABEL} characters, no NUL")
        name = _name(user_name)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        async with self.engine.begin() as conn:
            user = (await conn.execute(select(users).where(users.c.name == name))).first()
            if user is None or not user.active:
                raise UnknownUser(f"no active user {name}")
            result = await conn.execute(
                tokens.insert()
                .values(
                    user_id=user.id,
                    token_sha256=token_digest(token),
                    label=label,
                    created_at=self.clock.wall(),
                )
                .returning(tokens.c.id)
            )
            tid = int(result.scalar_one())
            await self._audit(
                conn,
                who,
                "token.issue",
                f"token:{tid}",
                "token created",
                detail={"user": name, "label": label},
            )
        return tid, token

    async def revoke_token(self, who: Principal, token_id: int) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=self.clock.wall())
            )
            if result.rowcount == 0:
                raise UnknownUser(f"no active token {token_id}")
            await self._audit(conn, who, "token.revoke", f"token:{token_id}", "token revoked")

    async def authenticate(self, token: str) -> Principal | None:
        """The user a bearer token belongs to, or None (unknown, revoked, inactive user)."""
        if not token or len(token) > 128:
            return None
        async with self.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(users.c.name, users.c.role, users.c.agent_id)
                    .select_from(tokens.join(users, tokens.c.user_id == users.c.id))
                    .where(
                        tokens.c.token_sha256 == token_digest(token),
                        tokens.c.revoked_at.is_(None),
                        users.c.active.is_(True),
                    )
                )
            ).first()
        return None if row is None else Principal(row.name, Role(row.role), row.agent_id)

    async def list_tokens(self) -> list[dict[str, Any]]:
        async with self.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        tokens.c.id,
                        users.c.name,
                        tokens.c.label,
                        tokens.c.created_at,
                        tokens.c.revoked_at,
                    )
                    .select_from(tokens.join(users, tokens.c.user_id == users.c.id))
                    .order_by(tokens.c.id)
                )
            ).all()
        return [dict(r._mapping) for r in rows]

    # -- sign-in and sessions -----------------------------------------------------------------

    async def _failure_state(
        self, conn: AsyncConnection, scope: Scope, key: str
    ) -> FailureCount | None:
        row = (
            await conn.execute(
                select(sign_in_failures).where(
                    sign_in_failures.c.scope == scope.value, sign_in_failures.c.key == key
                )
            )
        ).first()
        if row is None:
            return None
        return FailureCount(int(row.failures), row.window_start, row.locked_until)

    async def _count_failure(
        self, conn: AsyncConnection, scope: Scope, key: str, now: datetime
    ) -> FailureCount:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        # The row exists before it is locked, so two first failures cannot both insert.
        await conn.execute(
            dialect.insert(sign_in_failures)
            .values(scope=scope.value, key=key, failures=0, window_start=now)
            .on_conflict_do_nothing()
        )
        row = (
            await conn.execute(
                select(sign_in_failures)
                .where(sign_in_failures.c.scope == scope.value, sign_in_failures.c.key == key)
                .with_for_update()
            )
        ).one()
        state = after_failure(
            FailureCount(int(row.failures), row.window_start, row.locked_until),
            now,
            scope,
            self.lockout,
        )
        await conn.execute(
            update(sign_in_failures)
            .where(sign_in_failures.c.scope == scope.value, sign_in_failures.c.key == key)
            .values(
                failures=state.failures,
                window_start=state.window_start,
                locked_until=state.locked_until,
            )
        )
        return state

    async def sign_in(self, name: str, password: str, address: str = "") -> SignInResult:
        """Check a person's name and password; a new session, or why not (a value)."""
        now = self.clock.wall()
        key = unicodedata.normalize("NFC", name)[:128]
        address = address[:MAX_ADDRESS]
        keys = [(Scope.USER, key)] + ([(Scope.ADDRESS, address)] if address else [])
        async with self.reader.connect() as conn:
            for scope, k in keys:
                until = locked_until(await self._failure_state(conn, scope, k), now)
                if until is not None:
                    reason = (
                        RefusalReason.USER_LOCKED
                        if scope is Scope.USER
                        else RefusalReason.ADDRESS_LOCKED
                    )
                    await self._audit_sign_in(key, address, reason, until)
                    return SignInRefused(reason, until)
            row = (await conn.execute(select(users).where(users.c.name == key))).first()
        usable = row is not None and bool(row.active)
        stored = row.password_hash if usable and row is not None else None
        ok = await self._verify(password, stored)
        if not ok or row is None:
            async with self.engine.begin() as conn:
                states = [await self._count_failure(conn, s, k, now) for s, k in keys]
                locks = [u for u in (locked_until(st, now) for st in states) if u is not None]
                until = max(locks) if locks else None
                await self._audit(
                    conn,
                    None,
                    "sign_in",
                    f"user:{key}",
                    "wrong user name or password",
                    actor=key,
                    denied=True,
                    detail={
                        "address": address,
                        "locked_until": until.isoformat() if until else None,
                    },
                )
            return SignInRefused(RefusalReason.WRONG_CREDENTIALS, until)
        principal = Principal(row.name, Role(row.role), row.agent_id)
        rehash = stored is not None and self.hasher.needs_rehash(stored)
        new_hash = await self._hash(password) if rehash else None
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(sign_in_failures).where(
                    sign_in_failures.c.scope == Scope.USER.value, sign_in_failures.c.key == key
                )
            )
            if new_hash is not None:
                await conn.execute(
                    update(users).where(users.c.id == row.id).values(password_hash=new_hash)
                )
            session = await self._new_session(conn, int(row.id), principal, address, now)
            await self._audit(
                conn, principal, "sign_in", f"user:{key}", "signed in", detail={"address": address}
            )
        return session

    async def _new_session(
        self, conn: AsyncConnection, user_id: int, principal: Principal, address: str, now: datetime
    ) -> SignedIn:
        sid = new_session_id()
        expires = now + self.session_policy.lifetime
        await conn.execute(
            sessions.insert().values(
                session_sha256=session_digest(sid),
                user_id=user_id,
                address=address,
                created_at=now,
                last_seen_at=now,
                expires_at=expires,
            )
        )
        return SignedIn(principal, sid, csrf_token(sid), expires)

    async def _audit_sign_in(
        self, key: str, address: str, reason: RefusalReason, until: datetime
    ) -> None:
        if self.audit is None:
            return
        async with self.engine.begin() as conn:
            await self._audit(
                conn,
                None,
                "sign_in",
                f"user:{key}",
                f"refused: {reason.value}",
                actor=key,
                denied=True,
                detail={"address": address, "locked_until": until.isoformat()},
            )

    async def create_session(self, user_name: str, *, address: str = "") -> SignedIn:
        """A session for an active user without a password check (the caller has
        authenticated the person another way; sign-in uses ``sign_in``)."""
        name = _name(user_name)
        now = self.clock.wall()
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(users).where(users.c.name == name))).first()
            if row is None or not row.active:
                raise UnknownUser(f"no active user {name}")
            principal = Principal(row.name, Role(row.role), row.agent_id)
            session = await self._new_session(
                conn, int(row.id), principal, address[:MAX_ADDRESS], now
            )
            await self._audit(conn, principal, "session.create", f"user:{name}", "session created")
        return session

    async def resolve_session(self, session_id: str) -> ActiveSession | None:
        """The session behind a cookie value, if it is valid now (not expired, not idle too
        long, not revoked, its user active); marks it used."""
        if not session_id or len(session_id) > 128:
            return None
        now = self.clock.wall()
        policy = self.session_policy
        async with self.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        sessions.c.id,
                        sessions.c.created_at,
                        sessions.c.last_seen_at,
                        sessions.c.expires_at,
                        sessions.c.revoked_at,
                        users.c.name,
                        users.c.role,
                        users.c.agent_id,
                        users.c.active,
                    )
                    .select_from(sessions.join(users, sessions.c.user_id == users.c.id))
                    .where(sessions.c.session_sha256 == session_digest(session_id))
                )
            ).first()
        if row is None or row.revoked_at is not None or not row.active:
            return None
        if now >= row.expires_at or now - row.last_seen_at >= policy.idle_timeout:
            return None
        last_seen = row.last_seen_at
        if now - last_seen >= policy.touch_every:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(sessions).where(sessions.c.id == row.id).values(last_seen_at=now)
                )
            last_seen = now
        return ActiveSession(
            Principal(row.name, Role(row.role), row.agent_id),
            session_id,
            csrf_token(session_id),
            row.created_at,
            row.expires_at,
            min(row.expires_at, last_seen + policy.idle_timeout),
        )

    async def revoke_session(self, session_id: str) -> bool:
        """End one session (sign-out); False when it was unknown or already ended."""
        if not session_id or len(session_id) > 128:
            return False
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(sessions.c.id, users.c.name, users.c.role, users.c.agent_id)
                    .select_from(sessions.join(users, sessions.c.user_id == users.c.id))
                    .where(
                        sessions.c.session_sha256 == session_digest(session_id),
                        sessions.c.revoked_at.is_(None),
                    )
                )
            ).first()
            if row is None:
                return False
            await conn.execute(
                update(sessions).where(sessions.c.id == row.id).values(revoked_at=self.clock.wall())
            )
            who = Principal(row.name, Role(row.role), row.agent_id)
            await self._audit(conn, who, "sign_out", f"user:{row.name}", "session ended")
        return True

    sign_out = revoke_session

    async def revoke_sessions(self, who: Principal, user_name: str) -> int:
        """End every open session of a user; how many were open."""
        name = _name(user_name)
        async with self.engine.begin() as conn:
            uid = (await conn.execute(select(users.c.id).where(users.c.name == name))).scalar()
            if uid is None:
                raise UnknownUser(f"no user {name}")
            ended = await self._end_sessions(conn, int(uid), self.clock.wall())
            await self._audit(
                conn,
                who,
                "session.revoke",
                f"user:{name}",
                "sessions ended",
                detail={"ended": ended},
            )
        return ended

    async def _end_sessions(self, conn: AsyncConnection, user_id: int, now: datetime) -> int:
        result = await conn.execute(
            update(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    @staticmethod
    def check_csrf(session_id: str, token: str) -> bool:
        """True when ``token`` is the CSRF token of session ``session_id``."""
        return csrf_matches(session_id, token)
