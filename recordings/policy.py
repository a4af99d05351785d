"""Who may do what (pure): roles, permissions and the agent's own-data rule.

Least privilege: an admin runs the system (users, ingest, verify, purge, audit)
but does not listen to calls; compliance staff search, play and export evidence
and handle complaints; a supervisor searches and plays (numbers masked) and reads
complaints; an agent never lists recordings and may only open one of their own.
"""

from __future__ import annotations

from enum import StrEnum

from recordings.model import Role


class Permission(StrEnum):
    SEARCH = "search"
    PLAY = "play"
    PLAY_OWN = "play_own"  # only recordings whose agent is the user's agent id
    EXPORT = "export"
    INGEST = "ingest"
    COMPLAINT_READ = "complaint_read"
    COMPLAINT_WRITE = "complaint_write"
    MAINTAIN = "maintain"  # verify the store, purge
    AUDIT_READ = "audit_read"
    MANAGE_USERS = "manage_users"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {
            Permission.INGEST,
            Permission.MAINTAIN,
            Permission.AUDIT_READ,
            Permission.MANAGE_USERS,
        }
    ),
    Role.COMPLIANCE: frozenset(
        {
            Permission.SEARCH,
            Permission.PLAY,
            Permission.EXPORT,
            Permission.COMPLAINT_READ,
            Permission.COMPLAINT_WRITE,
            Permission.AUDIT_READ,
        }
    ),
    Role.SUPERVISOR: frozenset({Permission.SEARCH, Permission.PLAY, Permission.COMPLAINT_READ}),
    Role.AGENT: frozenset({Permission.PLAY_OWN}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def may_open(role: Role, user_agent_id: str, recording_agent: str) -> bool:
    """May this user see/play this one recording?"""
    if allows(role, Permission.PLAY):
        return True
    return (
        allows(role, Permission.PLAY_OWN)
        and bool(user_agent_id)
        and user_agent_id == recording_agent
    )


def sees_plaintext_in_export(role: Role) -> bool:
    """Only compliance staff's evidence export carries the full number (rules D)."""
    return role is Role.COMPLIANCE
