"""Listen, whisper and barge (quality monitoring, policy part 5 "监听"): a supervisor's
phone joined to an agent's line through an ARI snoop channel, each use audited.

How: the agent's softphone channel (``ag-...``, nailed up in the agent's bridge, so
it carries every call the agent takes) gets a snoop channel (``POST
/channels/{id}/snoop``) that enters this app; a mixing bridge ``mon-<id>`` holds the
snoop and the supervisor's phone, called at its agent-directory endpoint (the only
phone endpoints the dialer ever calls). The modes differ only in the snoop's
directions:

* listen: ``spy=both`` (hear agent and customer), ``whisper=none``;
* whisper: ``spy=both``, ``whisper=out`` (only the agent hears the supervisor);
* barge: ``spy=both``, ``whisper=both`` (agent and customer hear the supervisor).

Before any request reaches Asterisk the use is written to the hash-chained audit log
(who, whom, which mode, why); a failed audit write means no monitoring. The session
ends when the supervisor hangs up, the agent's line ends (the snoop ends with it) or
``stop`` is called; then the other channel and the bridge are removed.

The supervisor's phone is called through the runner's call-control port as an agent leg
(``ag-mon-<id>``, endpoint checked against the directory); the runner's agent slice
ignores it (no agent of a pool has that channel). A reconcile after an ARI reconnect
hangs it up as a channel it does not know, which ends the session cleanly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.agent_pool import AgentStatus
from dialer.ari.client import AriClient
from dialer.ari.errors import AriError, AriNotFound
from dialer.ari.events import AriEvent, ChannelDestroyed, StasisEnd, StasisStart
from dialer.http_api import ACCESS_KEY, PRINCIPAL_KEY, Access
from dialer.ids import AGENT_PREFIX
from dialer.legs import AgentLeg, OriginateRefused
from dialer.ports import CallControl, Clock
from dialer.runner import Runner
from identity.model import Principal
from recordings.audit import append_alone

logger = logging.getLogger(__name__)

SNOOP_PREFIX = "sp-"
#: The supervisor's phone is an agent leg (its endpoint from the agent directory, checked
#: by the call-control port like every agent call), so its id is an agent channel's.
PHONE_PREFIX = AGENT_PREFIX + "mon-"
BRIDGE_PREFIX = "mon-"


class MonitorMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


#: (spy, whisper) of the snoop channel per mode.
DIRECTIONS: dict[MonitorMode, tuple[str, str]] = {
    MonitorMode.LISTEN: ("both", "none"),
    MonitorMode.WHISPER: ("both", "out"),
    MonitorMode.BARGE: ("both", "both"),
}


class MonitorRefusal(StrEnum):
    NO_REASON = "no_reason"
    AGENT_NOT_ON_LINE = "agent_not_on_line"
    PHONE_NOT_IN_DIRECTORY = "phone_not_in_directory"
    SELF = "self"


class Auditor(Protocol):
    async def record(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        target: str,
        reason: str,
        detail: dict[str, str],
    ) -> None: ...


class Directory(Protocol):
    async def endpoint_of(self, agent_id: str) -> str | None: ...


class AgentLines(Protocol):
    def agent_line(self, agent_id: str) -> str | None:
        """The agent's softphone channel id while it is up, else None."""


@dataclass(frozen=True, slots=True)
class MonitorSession:
    id: str
    supervisor: str
    agent_id: str
    mode: MonitorMode
    reason: str
    phone: str  # the directory entry whose endpoint is called
    started: datetime

    @property
    def snoop_channel(self) -> str:
        return SNOOP_PREFIX + self.id

    @property
    def phone_channel(self) -> str:
        return PHONE_PREFIX + self.id

    @property
    def bridge(self) -> str:
        return BRIDGE_PREFIX + self.id


def _session_of(channel_id: str) -> str | None:
    for prefix in (SNOOP_PREFIX, PHONE_PREFIX):
        if channel_id.startswith(prefix):
            return channel_id[len(prefix) :]
    return None


class FloorMonitor:
    """The supervisors' monitoring sessions on one ARI application."""

    def __init__(
        self,
        client: AriClient,
        control: CallControl,
        lines: AgentLines,
        directory: Directory,
        auditor: Auditor,
        clock: Clock,
        *,
        app: str,
    ) -> None:
        self._client = client
        self._control = control
        self._lines = lines
        self._directory = directory
        self._auditor = auditor
        self._clock = clock
        self._app = app
        self._sessions: dict[str, MonitorSession] = {}

    def sessions(self) -> Sequence[MonitorSession]:
        return list(self._sessions.values())

    async def start(
        self,
        *,
        supervisor: str,
        role: str,
        phone: str,
        agent_id: str,
        mode: MonitorMode,
        reason: str,
    ) -> MonitorSession | MonitorRefusal:
        """Audit, then snoop on ``agent_id``'s line and call the supervisor's ``phone``."""
        reason = reason.strip()
        if not reason:
            return MonitorRefusal.NO_REASON
        if phone == agent_id:
            return MonitorRefusal.SELF
        line = self._lines.agent_line(agent_id)
        if line is None:
            return MonitorRefusal.AGENT_NOT_ON_LINE
        endpoint = await self._directory.endpoint_of(phone)
        if endpoint is None:
            return MonitorRefusal.PHONE_NOT_IN_DIRECTORY
        session = MonitorSession(
            uuid.uuid4().hex[:16], supervisor, agent_id, mode, reason, phone, self._clock.wall()
        )
        await self._auditor.record(
            actor=supervisor,
            role=role,
            action=f"monitor.{mode.value}",
            target=f"agent:{agent_id}",
            reason=reason,
            detail={"session": session.id, "phone": phone},
        )
        self._sessions[session.id] = session
        spy, whisper = DIRECTIONS[mode]
        try:
            await self._client.create_bridge(session.bridge, type="mixing")
            await self._client.snoop(
                line,
                app=self._app,
                spy=spy,
                whisper=whisper,
                app_args=("monitor", session.id),
                snoop_id=session.snoop_channel,
            )
            await self._client.add_channel(session.bridge, session.snoop_channel)
            await self._control.originate(
                leg=AgentLeg(phone),
                channel_id=session.phone_channel,
                endpoint=endpoint,
                caller_id=f"{mode.value} {agent_id} <{agent_id}>",
                ring_timeout=30,
                app_args=("monitor", session.id),
                variables={},
            )
        except (AriError, OriginateRefused):
            await self.stop(session.id)
            raise
        logger.info(
            "monitor %s: %s %s agent %s from phone %s",
            session.id,
            supervisor,
            mode.value,
            agent_id,
            phone,
        )
        return session

    async def handle_event(self, ev: AriEvent) -> None:
        """The supervisor's phone answered: into the bridge; either side gone: the end."""
        channel_id = ev.channel_id
        sid = _session_of(channel_id) if channel_id is not None else None
        session = self._sessions.get(sid) if sid is not None else None
        if session is None:
            return
        if isinstance(ev, StasisStart) and channel_id == session.phone_channel:
            try:
                await self._client.add_channel(session.bridge, channel_id)
            except AriError as exc:
                logger.warning("monitor %s: phone not bridged: %s", session.id, exc)
                await self.stop(session.id)
        elif isinstance(ev, (ChannelDestroyed, StasisEnd)):
            await self.stop(session.id)

    async def stop(self, session_id: str) -> bool:
        """End a session: both channels hung up, the bridge removed. False if unknown."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        for channel in (session.phone_channel, session.snoop_channel):
            try:
                await self._client.hangup(channel)
            except AriNotFound:
                pass  # already gone: that is what ended the session
        try:
            await self._client.destroy_bridge(session.bridge)
        except AriNotFound:
            pass
        logger.info("monitor %s: ended", session.id)
        return True


class RunnerLines:
    """``AgentLines`` from the runner's agent pools."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def agent_line(self, agent_id: str) -> str | None:
        for run in self._runner.campaigns.values():
            agent = run.pool.get(agent_id)
            if agent is not None and agent.channel_up and agent.status is not AgentStatus.OFFLINE:
                return agent.channel_id
        return None


class AuditLogAuditor:
    """``Auditor`` writing to the hash-chained audit log of the recordings database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        target: str,
        reason: str,
        detail: dict[str, str],
    ) -> None:
        await append_alone(
            self._engine,
            actor=actor,
            role=role,
            action=action,
            target=target,
            reason=reason,
            detail=detail,
        )


# --- HTTP ------------------------------------------------------------------------------------

MONITOR_KEY: web.AppKey[FloorMonitor] = web.AppKey("floor_monitor", FloorMonitor)


def _json_error(status: int, message: str, field: str = "") -> web.Response:
    body = {"error": message, **({"field": field} if field else {})}
    return web.json_response(body, status=status)


def _session_json(s: MonitorSession) -> dict[str, str]:
    return {
        "id": s.id,
        "supervisor": s.supervisor,
        "agent": s.agent_id,
        "mode": s.mode.value,
        "phone": s.phone,
        "reason": s.reason,
        "started": s.started.isoformat(),
    }


async def _start(request: web.Request) -> web.Response:
    """``POST /api/monitor {"agent", "mode": listen|whisper|barge, "phone", "reason"}``."""
    user = request.get(PRINCIPAL_KEY)
    if not isinstance(user, Principal):
        return _json_error(403, "listening in needs a signed-in supervisor (the API is open)")
    try:
        data = await request.json()
    except ValueError:
        return _json_error(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return _json_error(400, "body must be a JSON object")
    for name in ("agent", "mode", "phone", "reason"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            return _json_error(400, f"{name}: required (a non-empty string)", name)
    try:
        mode = MonitorMode(data["mode"])
    except ValueError:
        return _json_error(400, "mode: one of listen, whisper, barge", "mode")
    monitor = request.app[MONITOR_KEY]
    try:
        result = await monitor.start(
            supervisor=user.name,
            role=user.role.value,
            phone=data["phone"],
            agent_id=data["agent"],
            mode=mode,
            reason=data["reason"],
        )
    except (AriError, OriginateRefused) as exc:
        return _json_error(503, f"not connected: {exc}")
    if isinstance(result, MonitorRefusal):
        return _json_error(409, result.value)
    return web.json_response(_session_json(result), status=201)


async def _list(request: web.Request) -> web.Response:
    return web.json_response([_session_json(s) for s in request.app[MONITOR_KEY].sessions()])


async def _stop(request: web.Request) -> web.Response:
    if not await request.app[MONITOR_KEY].stop(request.match_info["session"]):
        return _json_error(404, "no such monitoring session")
    return web.json_response({"stopped": request.match_info["session"]})


def mount_monitor(app: web.Application, monitor: FloorMonitor) -> None:
    """The monitoring routes on the dialer API, for supervisors and admins."""
    app[MONITOR_KEY] = monitor
    for method, path, handler in (
        ("POST", "/api/monitor", _start),
        ("GET", "/api/monitor", _list),
        ("DELETE", "/api/monitor/{session}", _stop),
    ):
        app.router.add_route(method, path, handler)
        app[ACCESS_KEY][f"{method} {path}"] = Access.CONTROL
