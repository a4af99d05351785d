"""The abandon path and the dialplan agree: variables set at originate, the hand-off to
``[dialer-abandon]`` (which offers the press-9 opt-out), and the AGI desk config setting.

One agent and four lines per agent force abandons; simpbx's request journal
shows what the dialer really sent to Asterisk.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agi_scripts.desk_config import DeskConfigError, load_desk_config
from compliance.policy import parse_policy
from dialer.app import DialerStack, _start_agi, running
from dialer.config import AgiSettings, Settings, load_settings
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from simulation.agents import SimulatedAgents
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec, numbers_ending
from simulation.simpbx.server import SimPbx, running_simpbx

pytestmark = pytest.mark.timeout(120)
CAMPAIGN = "abn"
CONF = Path(__file__).parents[2] / "asterisk_conf" / "extensions.conf"


def abandon_context_lines() -> list[str]:
    out: list[str] = []
    section = ""
    for raw in CONF.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            section = m.group(1)
        elif section == "dialer-abandon" and line:
            out.append(line)
    return out


@pytest.fixture
async def abandoning(tmp_path: Path) -> AsyncIterator[tuple[SimPbx, DialerStack]]:
    policy = parse_policy(DEMO_POLICY, "demo policy")
    config = RunnerConfig(
        wrapup_limit=5.0,
        drain_timeout=20.0,
        tick=0.02,
        max_claim=50,
        abandon_context="dialer-abandon",
    )
    async with (
        running_simpbx(time_scale=10.0, recordings_dir=tmp_path / "rec") as sim,
        demo_stack(
            tmp_path,
            sim.base_url,
            policy=policy,
            clock=ShiftedClock(business_hours_start(policy)),
            config=config,
        ) as st,
    ):
        yield sim, st


async def test_abandoned_calls_go_to_the_dialplan_with_the_optout_variables(
    abandoning: tuple[SimPbx, DialerStack],
) -> None:
    sim, st = abandoning
    numbers = numbers_ending("1", 6, seed=41)  # every callee answers, and talks
    spec = campaign_spec(CAMPAIGN, pacing="ratio")
    spec["pacing"] = {"method": "ratio", "lines_per_agent": 4.0, "target_abandon": 0.9}
    await seed_campaign(
        st, numbers, spec=spec, blacklist=[], at=st.runner.clock.wall() - timedelta(hours=1)
    )
    agents = SimulatedAgents(st.runner, CAMPAIGN, ["201"], seed=3, max_talk=2.0, wrap_seconds=0.05)
    async with running(st, burst=True) as task:
        await agents.login_all()
        agents_task = asyncio.create_task(agents.run())
        try:
            async with asyncio.timeout(90):
                await asyncio.shield(task)
        finally:
            agents.stop()
            await agents_task

    attempts = {a.attempt_id: a for a in await st.attempts.all()}
    abandoned = [a for a in attempts.values() if a.abandoned]
    assert abandoned, "the scenario produced no abandon"
    assert all(a.stage == "done" for a in abandoned)

    originated: dict[str, dict[str, Any]] = {}
    continued: dict[str, dict[str, str]] = {}
    subscribed: set[str] = set()
    for r in sim.requests:
        if r.method == "POST" and r.path == "/channels" and r.status == 200:
            originated[r.query["channelId"]] = r.body if isinstance(r.body, dict) else {}
        elif r.method == "POST" and r.path.endswith("/continue") and r.status < 300:
            continued[r.path.split("/")[2]] = dict(r.query)
        elif r.method == "POST" and r.path.endswith("/subscription") and r.status < 300:
            subscribed.add(r.query["eventSource"].removeprefix("channel:"))
        assert not (r.method == "POST" and "/play" in r.path and "ab-" in json.dumps(r.query)), (
            "an abandon message was played over ARI although the dialplan plays it"
        )
    for a in abandoned:
        variables = originated[a.channel_id].get("variables", {})
        assert variables["DIALER_ATTEMPT_ID"] == a.attempt_id
        assert variables["DIALER_CAMPAIGN"] == CAMPAIGN
        assert variables["DIALER_NUMBER"] == a.number
        assert continued.get(a.channel_id) == {
            "context": "dialer-abandon",
            "extension": "s",
            "priority": "1",
        }
        assert a.channel_id in subscribed  # its ChannelDestroyed still reaches the app
    # Calls that reached the agent were never handed to the dialplan.
    assert not {a.channel_id for a in attempts.values() if a.connected} & set(continued)

    # ... and the dialplan reads exactly those variables for the optout route.
    lines = " ".join(abandon_context_lines())
    assert lines.startswith("exten => s,1,")
    assert (
        "AGI(agi://${DIALER_AGI}/optout,${DIALER_NUMBER},${DIALER_ATTEMPT_ID},${DIALER_CAMPAIGN})"
        in lines
    )


def test_settings_default_to_the_dialplan_abandon_and_read_the_desk_config(
    tmp_path: Path,
) -> None:
    assert Settings().dialer.abandon_context == "dialer-abandon"
    conf = tmp_path / "dialer.toml"
    conf.write_text(
        '[agi]\ndesk_config = "/etc/dialer/desk.toml"\n[dialer]\nabandon_context = ""\n'
    )
    settings = load_settings(conf, env={})
    assert settings.agi.desk_config == "/etc/dialer/desk.toml"
    assert settings.dialer.abandon_context == ""
    env = load_settings(None, env={"DIALER__AGI__DESK_CONFIG": "/srv/desk.toml"})
    assert env.agi.desk_config == "/srv/desk.toml"


async def test_dialer_serve_agi_uses_the_desk_config_setting(
    abandoning: tuple[SimPbx, DialerStack], tmp_path: Path
) -> None:
    _, st = abandoning
    desk = tmp_path / "desk.toml"
    desk.write_text((CONF.parent / "desk.toml").read_text() + "\n# broken on purpose\n[[[\n")
    settings = replace(st.settings, agi=AgiSettings(port=0, desk_config=str(desk)))
    # A bad desk file named in the setting stops the start-up with its name: it was read.
    with pytest.raises(DeskConfigError, match=r"desk\.toml"):
        await _start_agi(settings, st)
    good = replace(settings, agi=AgiSettings(port=0, desk_config=str(CONF.parent / "desk.toml")))
    agi = await _start_agi(good, st)
    try:
        assert agi.desk.config == load_desk_config(CONF.parent / "desk.toml")
    finally:
        await agi.stop()
