"""The one authorization decision: may this principal do this action (on this resource)?

Every guard asks ``decide`` (the recordings API, the dialer API, the pages and their
WebSocket) and gets a ``Decision`` value; none keeps a role table of its own.

Least privilege, as the policy asks:
- an ``admin`` runs the system (users, ingest, store checks and purge, the audit log,
  campaigns and agents) but does not listen to calls;
- ``compliance`` staff search, play and export evidence (the full number only in their
  evidence export), handle complaints, read the audit log, read campaigns and figures;
- a ``supervisor`` searches and plays (numbers masked), reads complaints, steers
  campaigns and any agent;
- an ``agent`` acts only as its own agent and opens only its own recordings; it never
  lists recordings.

``owner`` is the agent a resource belongs to (the agent id in an agent route, a
recording's agent). ``None`` asks about the right in general ("may this role open some
recordings at all?"), so a guard can refuse before it looks anything up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from identity.model import Principal, Role


class Action(StrEnum):
    # recordings and complaints
    RECORDINGS_SEARCH = "recordings.search"
    RECORDINGS_PLAY = "recordings.play"
    RECORDINGS_EXPORT = "recordings.export"
    RECORDINGS_EXPORT_PLAINTEXT = "recordings.export_plaintext"
    RECORDINGS_INGEST = "recordings.ingest"
    COMPLAINTS_READ = "complaints.read"
    COMPLAINTS_WRITE = "complaints.write"
    STORE_MAINTAIN = "store.maintain"
    AUDIT_READ = "audit.read"
    USERS_MANAGE = "users.manage"
    # quality checks (policy part 5)
    QUALITY_READ = "quality.read"  # monthly scores and reviews (an agent: its own)
    QUALITY_SCORE = "quality.score"  # score calls, draw samples, answer disputes
    QUALITY_DISPUTE = "quality.dispute"  # dispute a review of one's own call
    QUALITY_RESOLVE = "quality.resolve"  # resolve an answered dispute
    # the dialer
    AGENT_ACT = "dialer.agent"
    CAMPAIGNS_READ = "dialer.campaigns.read"
    CAMPAIGNS_CONTROL = "dialer.campaigns.control"


class Scope(StrEnum):
    ALL = "all"
    OWN = "own"  # only resources whose owner is the principal's agent id


_ALL, _OWN = Scope.ALL, Scope.OWN

GRANTS: dict[Role, dict[Action, Scope]] = {
    Role.ADMIN: {
        Action.RECORDINGS_INGEST: _ALL,
        Action.STORE_MAINTAIN: _ALL,
        Action.AUDIT_READ: _ALL,
        Action.USERS_MANAGE: _ALL,
        Action.AGENT_ACT: _ALL,
        Action.CAMPAIGNS_READ: _ALL,
        Action.CAMPAIGNS_CONTROL: _ALL,
    },
    Role.COMPLIANCE: {
        Action.RECORDINGS_SEARCH: _ALL,
        Action.RECORDINGS_PLAY: _ALL,
        Action.RECORDINGS_EXPORT: _ALL,
        Action.RECORDINGS_EXPORT_PLAINTEXT: _ALL,
        Action.COMPLAINTS_READ: _ALL,
        Action.COMPLAINTS_WRITE: _ALL,
        Action.AUDIT_READ: _ALL,
        Action.CAMPAIGNS_READ: _ALL,
        Action.QUALITY_READ: _ALL,
        Action.QUALITY_SCORE: _ALL,
        Action.QUALITY_RESOLVE: _ALL,
    },
    Role.SUPERVISOR: {
        Action.RECORDINGS_SEARCH: _ALL,
        Action.RECORDINGS_PLAY: _ALL,
        Action.COMPLAINTS_READ: _ALL,
        Action.AGENT_ACT: _ALL,
        Action.CAMPAIGNS_READ: _ALL,
        Action.CAMPAIGNS_CONTROL: _ALL,
        Action.QUALITY_READ: _ALL,
        Action.QUALITY_SCORE: _ALL,
    },
    Role.AGENT: {
        Action.RECORDINGS_PLAY: _OWN,
        Action.AGENT_ACT: _OWN,
        Action.QUALITY_READ: _OWN,
        Action.QUALITY_DISPUTE: _OWN,
    },
}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    scope: Scope | None = None  # the grant that allowed it


def decide(who: Principal, action: Action, owner: str | None = None) -> Decision:
    """Allow or deny ``action`` to ``who``; ``owner``: see the module docstring."""
    scope = GRANTS[who.role].get(action)
    if scope is None:
        return Decision(False, f"{who.role.value} {who.name!r} may not {_words(action)}")
    if scope is Scope.ALL:
        return Decision(True, f"{who.role.value} may {_words(action)}", scope)
    if not who.agent_id:
        return Decision(False, f"{who.role.value} {who.name!r} has no agent id")
    if owner is not None and owner != who.agent_id:
        return Decision(
            False,
            f"{who.role.value} {who.name!r} may {_words(action)} only as agent {who.agent_id}",
        )
    return Decision(True, f"{who.role.value} may {_words(action)} as agent {who.agent_id}", scope)


_PHRASES: dict[Action, str] = {
    Action.RECORDINGS_SEARCH: "search recordings",
    Action.RECORDINGS_PLAY: "open recordings",
    Action.RECORDINGS_EXPORT: "export evidence",
    Action.RECORDINGS_EXPORT_PLAINTEXT: "export full numbers",
    Action.RECORDINGS_INGEST: "ingest recordings",
    Action.COMPLAINTS_READ: "read complaints",
    Action.COMPLAINTS_WRITE: "handle complaints",
    Action.STORE_MAINTAIN: "maintain the store",
    Action.AUDIT_READ: "read the audit log",
    Action.USERS_MANAGE: "manage users",
    Action.QUALITY_READ: "read quality scores",
    Action.QUALITY_SCORE: "score calls",
    Action.QUALITY_DISPUTE: "dispute quality reviews",
    Action.QUALITY_RESOLVE: "resolve disputes",
    Action.AGENT_ACT: "act for agents",
    Action.CAMPAIGNS_READ: "read campaigns",
    Action.CAMPAIGNS_CONTROL: "control campaigns",
}


def _words(action: Action) -> str:
    return _PHRASES[action]
