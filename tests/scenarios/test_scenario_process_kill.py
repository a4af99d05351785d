"""``dialer serve`` as a real process, SIGKILLed mid-campaign and restarted on the same database.

The calls the dead process had in flight are hung up and finalized by the new
one (recovery at start-up, then the first reconcile), nothing is dialled twice,
nothing stays reserved in the contact ledger, and a graceful stop (SIGTERM)
leaves no channel behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from compliance.campaigns import CampaignState, parse_campaign_spec
from compliance.gate import open_compliance
from compliance.leads import LeadStatus
from compliance.model import AttemptOutcome
from compliance.numbers import mask
from compliance.policy import parse_policy
from dialer.agent_directory import AgentDirectory
from dialer.attempts import AttemptLog, Stage
from simulation.demo_data import campaign_spec, leads_csv, sample_numbers
from simulation.simpbx.server import running_simpbx

pytestmark = pytest.mark.slow

ALL_HOURS_POLICY = """
version = "kill-test"
[caller_id]
pool = ["010-58001234"]
[segments.default]
description = "the test site calls at any hour"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
windows = ["00:00-23:59"]
"""
MIX = {"1": 0.4, "7": 0.2, "9": 0.2, "5": 0.1, "3": 0.1}  # people hang up by themselves


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_dialer(cfg: Path, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "DIALER__DIALER__WRAPUP_LIMIT": "0.3"}
    with log.open("ab") as out:  # the child has its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialer.cli", "serve", "--config", str(cfg),
            stdout=out, stderr=asyncio.subprocess.STDOUT, env=env,
        )  # fmt: skip


async def api(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as r:
        return r.status, await r.json()


async def wait_healthy(session: aiohttp.ClientSession, base: str, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while True:
            try:
                status, _ = await api(session, "GET", base + "/api/health")
                if status == 200:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def test_kill_and_restart_the_dialer_process(tmp_path: Path) -> None:
    numbers = sample_numbers(60, seed=21, mix=MIX)
    db_url = f"sqlite+aiosqlite:///{tmp_path}/dialer.sqlite3"
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(ALL_HOURS_POLICY)
    policy = parse_policy(ALL_HOURS_POLICY, str(policy_file))
    spec = campaign_spec("kill", pacing="progressive")
    spec["hours"] = {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "windows": ["00:00-23:59"],
    }
    stores = await open_compliance(db_url, policy)
    try:
        await stores.campaigns.create(parse_campaign_spec(spec))
        await stores.leads.import_text(
            leads_csv(numbers, "broadband"), "kill.csv", "kill", tz=policy.tz
        )
        await stores.campaigns.set_state("kill", CampaignState.RUNNING)
        # The administrator puts the agents' softphones in the agent directory.
        await AgentDirectory(stores.engine).add_many(
            [(f"{401 + i}", f"Local/{401 + i}@sim-agents") for i in range(8)],
            pbx="simpbx",
            added_by="test",
        )
    finally:
        await stores.close()

    http_port = free_port()
    base = f"http://127.0.0.1:{http_port}"
    log = tmp_path / "dialer.log"
    async with running_simpbx(time_scale=10, recordings_dir=tmp_path / "rec") as sim:
        cfg = tmp_path / "dialer.toml"
        cfg.write_text(
            f'[ari]\nurl = "{sim.base_url}"\nusername = "dialer"\npassword = "dialer-secret"\n'
            f'[database]\nurl = "{db_url}"\n'
            f'[dialer]\ncustomer_endpoint = "Local/{{number}}@sim-customers"\n'
            f'policy = "{policy_file}"\n'
            f"[http]\nport = {http_port}\n[agi]\nenabled = false\n[recordings]\nenabled = false\n"
        )
        agents = [f"{401 + i}" for i in range(8)]
        async with aiohttp.ClientSession() as session:
            first = await start_dialer(cfg, log)
            try:
                await wait_healthy(session, base)
                for a in agents:
                    status, body = await api(
                        session, "POST", f"{base}/api/agents/{a}/login", json={"campaign": "kill"}
                    )
                    assert status == 200, body
                async with asyncio.timeout(20):
                    while True:
                        _, fig = await api(session, "GET", f"{base}/api/campaigns/kill/figures")
                        if (
                            fig["calls_placed"] >= 15
                            and fig["agents_talking"] + fig["dials_in_flight"] > 0
                        ):
                            break
                        await asyncio.sleep(0.05)
            finally:
                first.send_signal(signal.SIGKILL)
                await first.wait()
            in_pbx = [
                c["id"] for c in sim.state()["channels"] if c["id"].startswith(("dl-", "ag-"))
            ]
            assert in_pbx, "the dead dialer left calls in the PBX"

            second = await start_dialer(cfg, log)
            try:
                await wait_healthy(session, base)
                for a in agents:
                    status, body = await api(
                        session, "POST", f"{base}/api/agents/{a}/login", json={"campaign": "kill"}
                    )
                    assert status == 200, body
                stores = await open_compliance(db_url, policy)
                try:
                    async with asyncio.timeout(60):
                        while True:
                            leads = await stores.leads.list_leads("kill")
                            open_ = [
                                x
                                for x in leads
                                if x.status in (LeadStatus.NEW, LeadStatus.IN_PROGRESS)
                            ]
                            if not open_:
                                break
                            await asyncio.sleep(0.2)
                finally:
                    await stores.close()
            finally:
                second.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(second.wait(), 40)
            assert code == 0, log.read_text()[-3000:]

        # Old calls hung up, nothing left behind after the graceful stop.
        assert sim.state()["channels"] == []
        channels: dict[str, set[str]] = defaultdict(set)
        for r in sim.requests:
            cid = r.query.get("channelId", "")
            if r.method == "POST" and r.path == "/channels" and cid.startswith("dl-"):
                channels[r.query["endpoint"]].add(cid)
        twice = [mask(e.split("/")[1].split("@")[0]) for e, ids in channels.items() if len(ids) > 1]
        assert not twice, f"dialled twice across the restart: {twice}"
        left = {c for c in in_pbx if ";" not in c}
        deleted = {r.path.rsplit("/", 1)[1] for r in sim.requests if r.method == "DELETE"}
        # The restarted dialer hung up what the dead one left (some ended on their own).
        assert left & deleted, "recovery hung up the calls the dead process left"

    stores = await open_compliance(db_url, policy)
    try:
        log_ = AttemptLog(stores.engine)
        attempts = await log_.all()
        assert {a.stage for a in attempts} <= {Stage.DONE, Stage.REFUSED}
        assert any("recovered" in a.reasons for a in attempts)
        for n in numbers:
            for e in await stores.ledger.history(n):
                assert e.outcome != AttemptOutcome.RESERVED, mask(n)
    finally:
        await stores.close()
