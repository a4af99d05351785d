"""Listen, whisper and barge against simpbx: the snoop on the agent's line with the mode's
directions, the supervisor's phone called and bridged with it, the use audited (who,
whom, why) before anything reaches the PBX, and everything removed at the end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dialer.agent_pool import AgentStatus
from dialer.app import running
from dialer.http_api import make_api_app
from dialer.monitor import (
    AuditLogAuditor,
    FloorMonitor,
    MonitorMode,
    MonitorRefusal,
    MonitorSession,
    RunnerLines,
    mount_monitor,
)
from recordings.audit import entries
from recordings.schema import open_engine
from simulation.demo_data import numbers_ending


async def _until(predicate: Any, within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polling simulated state, as a wallboard does
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("mode", "spy", "whisper"),
    [(MonitorMode.LISTEN, "both", "none"), (MonitorMode.WHISPER, "both", "out"),
     (MonitorMode.BARGE, "both", "both")],
)  # fmt: skip
async def test_monitor_a_live_call(
    scenario_factory: Any, mode: MonitorMode, spy: str, whisper: str
) -> None:
    numbers = numbers_ending("2", 2, seed=9)  # people who stay on the line
    async with scenario_factory(numbers, pacing="progressive") as scn:
        stack = scn.stack
        audit_engine = await open_engine(stack.settings.database.url)
        monitor = FloorMonitor(
            stack.client,
            stack.runner.control,
            RunnerLines(stack.runner),
            stack.directory,
            AuditLogAuditor(audit_engine),
            stack.runner.clock,
            app=stack.settings.ari.app,
        )
        stack.events.on_any(monitor.handle_event)
        try:
            async with running(stack):
                await stack.runner.agent_login("201", "scn")

                def talking() -> bool:
                    view = stack.runner.agent_view("201")
                    return view is not None and view[1].status is AgentStatus.TALKING

                await _until(talking)
                refused = await monitor.start(
                    supervisor="sue", role="supervisor", phone="901", agent_id="201",
                    mode=mode, reason="  ",
                )  # fmt: skip
                assert refused is MonitorRefusal.NO_REASON
                assert await monitor.start(
                    supervisor="sue", role="supervisor", phone="901", agent_id="777",
                    mode=mode, reason="quality check",
                ) is MonitorRefusal.AGENT_NOT_ON_LINE  # fmt: skip
                assert not scn.sim.engine.snoops, "nothing reaches the PBX without a reason"
                session = await monitor.start(
                    supervisor="sue", role="supervisor", phone="901", agent_id="201",
                    mode=mode, reason="quality check, part 5",
                )  # fmt: skip
                assert isinstance(session, MonitorSession)
                [snoop] = scn.sim.engine.snoops
                agent = stack.runner.campaigns["scn"].pool.get("201")
                assert agent is not None
                assert (snoop.target, snoop.spy, snoop.whisper) == (agent.channel_id, spy, whisper)

                def bridged() -> bool:
                    bridge = scn.sim.engine.bridges.get(session.bridge)
                    return bridge is not None and {c.id for c in bridge.channels} == {
                        session.snoop_channel,
                        session.phone_channel,
                    }

                await _until(bridged)
                audit = [e async for e in entries(audit_engine) if e.action.startswith("monitor.")]
                assert [(e.actor, e.action, e.target, e.reason) for e in audit] == [
                    ("sue", f"monitor.{mode.value}", "agent:201", "quality check, part 5")
                ]
                assert await monitor.stop(session.id)
                await _until(
                    lambda: (
                        session.phone_channel not in scn.sim.engine.channels
                        and session.snoop_channel not in scn.sim.engine.channels
                        and session.bridge not in scn.sim.engine.bridges
                    )
                )
                assert monitor.sessions() == []
                if mode is MonitorMode.LISTEN:
                    await _over_http(stack, monitor)
                await stack.runner.agent_hangup("201")
        finally:
            await audit_engine.dispose()


async def _over_http(stack: Any, monitor: FloorMonitor) -> None:
    """The API: an open API cannot name who listens (403); with a token, 201 then DELETE."""
    for token in ("", "t0k"):
        app = make_api_app(stack, token=token)
        mount_monitor(app, monitor)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            h = {"Authorization": f"Bearer {token}"} if token else {}
            body = {"agent": "201", "mode": "listen", "phone": "901", "reason": "coaching"}
            r = await client.post("/api/monitor", json=body, headers=h)
            if not token:
                assert r.status == 403
                continue
            assert (
                await client.post("/api/monitor", json={**body, "mode": "spy"}, headers=h)
            ).status == 400
            assert (await client.post("/api/monitor", json=body)).status == 401
            assert r.status == 201, await r.text()
            session = await r.json()
            assert session["supervisor"] == "http.token" and session["mode"] == "listen"
            listed = await (await client.get("/api/monitor", headers=h)).json()
            assert [x["id"] for x in listed] == [session["id"]]
            r = await client.delete(f"/api/monitor/{session['id']}", headers=h)
            assert r.status == 200
            assert (await client.delete(f"/api/monitor/{session['id']}", headers=h)).status == 404
        finally:
            await client.close()
