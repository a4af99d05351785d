"""Values of identity and access: roles, principals, users, sign-in results (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    COMPLIANCE = "compliance"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a person signed in, a token's user, or a named operator or process.

    ``agent_id`` is the dialer agent an ``agent`` user is (empty for the other roles).
    """

    name: str
    role: Role
    agent_id: str = ""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    agent_id: str
    active: bool
    has_password: bool = False


class RefusalReason(StrEnum):
    """Why a sign-in was refused. The person is told only "wrong name or password" or
    "locked until T": never whether the name exists."""

    WRONG_CREDENTIALS = "wrong_credentials"
    USER_LOCKED = "user_locked"
    ADDRESS_LOCKED = "address_locked"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new login session. ``session_id`` goes in the cookie; it is stored only hashed."""

    principal: Principal
    session_id: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SignInRefused:
    reason: RefusalReason
    locked_until: datetime | None = None

    @property
    def message(self) -> str:
        if self.locked_until is not None:
            return (
                "too many failed sign-ins: locked until "
                f"{self.locked_until.isoformat(timespec='seconds')}"
            )
        return "wrong user name or password"


SignInResult = SignedIn | SignInRefused


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A session that is valid now (``resolve_session``)."""

    principal: Principal
    session_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime  # absolute end
    idle_deadline: datetime  # ends earlier when unused until then
