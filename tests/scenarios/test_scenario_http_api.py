"""The HTTP API of ``dialer serve`` and its start-up errors, against simpbx."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from compliance.numbers import mask
from dialer.app import running
from dialer.commands import cmd_serve
from dialer.http_api import make_api_app
from simulation.demo_data import campaign_spec, leads_csv, numbers_ending
from simulation.simpbx.server import running_simpbx


async def wait_for(predicate: Any, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not await predicate():  # noqa: ASYNC110 - polling the HTTP API, as a client does
            await asyncio.sleep(0.05)


async def test_agent_and_supervisor_api(scenario_factory: Any) -> None:
    numbers = numbers_ending("2", 3, seed=3)  # people who stay on the line: the agent ends
    overrides = {"wrapup_limit": 1.0, "drain_timeout": 3.0}
    async with scenario_factory([], seed=False, overrides=overrides) as scn:
        stack = scn.stack
        client = TestClient(TestServer(make_api_app(stack, token="t0k")))
        await client.start_server()
        h = {"Authorization": "Bearer t0k"}
        try:
            assert (await client.get("/api/campaigns")).status == 401
            spec = campaign_spec("api", pacing="progressive")
            bad = await client.post("/api/campaigns", json={**spec, "ring_timeout": 5}, headers=h)
            assert bad.status == 400 and (await bad.json())["field"] == "ring_timeout"
            created = await client.post("/api/campaigns", json=spec, headers=h)
            assert created.status == 201, await created.text()
            await stack.stores.leads.import_text(
                leads_csv(numbers, "broadband"),
                "api.csv",
                "api",
                tz=stack.policy.tz,
                now=scn.clock.wall(),
            )
            r = await client.post("/api/campaigns/api/start", headers=h)
            assert r.status == 200 and (await r.json())["state"] == "running"
            async with running(stack):
                r = await client.post("/api/agents/501/login", json={}, headers=h)
                assert r.status == 400 and (await r.json())["field"] == "campaign"
                r = await client.post("/api/agents/501/login", json={"campaign": "api"}, headers=h)
                assert r.status == 200, await r.text()

                async def talking() -> bool:
                    data = await (await client.get("/api/agents/501", headers=h)).json()
                    return bool(data["status"] == "talking")

                await wait_for(talking)
                agent = await (await client.get("/api/agents/501", headers=h)).json()
                assert agent["customer"] in {mask(n) for n in numbers}
                assert all(n not in str(agent) for n in numbers), (
                    "an agent never sees a full number"
                )
                r = await client.post(
                    "/api/agents/501/disposition", json={"kind": "order"}, headers=h
                )
                assert r.status == 400  # still talking: no call awaiting a disposition
                assert (await client.post("/api/agents/501/hangup", headers=h)).status == 200

                async def wrapping() -> bool:
                    data = await (await client.get("/api/agents/501", headers=h)).json()
                    return bool(data["status"] == "wrapup")

                await wait_for(wrapping)
                r = await client.post(
                    "/api/agents/501/disposition", json={"kind": "order"}, headers=h
                )
                body = await r.json()
                assert r.status == 400 and body["field"] == "confirmed", body
                # Inbound first: calls waiting inbound pause outbound pacing.
                r = await client.post("/api/inbound", json={"waiting": 3}, headers=h)
                assert r.status == 200
                r = await client.post(
                    "/api/agents/501/disposition",
                    json={"kind": "order", "product": "broadband", "confirmed": True},
                    headers=h,
                )
                assert r.status == 200 and (await r.json())["lead_status"] == "done"
                assert (
                    await client.post("/api/inbound", json={"waiting": -1}, headers=h)
                ).status == 400
                placed = stack.runner.figures("api").calls_placed
                assert (await client.post("/api/agents/501/ready", headers=h)).status == 200
                await asyncio.sleep(0.5)
                assert stack.runner.figures("api").calls_placed == placed
                await client.post("/api/inbound", json={"waiting": 0}, headers=h)
                await wait_for(lambda: _placed_more(stack, placed))
                figures = await (await client.get("/api/campaigns/api/figures", headers=h)).json()
                assert figures["funnel"]["orders"] == 1
                assert figures["agents_logged_in"] == 1
                r = await client.post("/api/campaigns/api/pause", headers=h)
                assert r.status == 200
                assert not stack.runner.campaigns["api"].dialling
                await client.post("/api/agents/501/hangup", headers=h)
                health = await client.get("/api/health")
                assert health.status == 200
        finally:
            await client.close()


async def _placed_more(stack: Any, placed: int) -> bool:
    return bool(stack.runner.figures("api").calls_placed > placed)


def _serve_args(tmp_path: Path, url: str, password: str) -> argparse.Namespace:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text(
        f'[ari]\nurl = "{url}"\nusername = "dialer"\npassword = "{password}"\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/d.sqlite3"\n'
        "[agi]\nenabled = false\n[recordings]\nenabled = false\n"
    )
    return argparse.Namespace(config=str(cfg))


async def test_serve_exits_3_on_wrong_ari_url(tmp_path: Path, capsys: Any) -> None:
    code = await cmd_serve(_serve_args(tmp_path, "http://127.0.0.1:1/ari", "x"))
    assert code == 3
    err = capsys.readouterr().err
    assert "cannot reach ARI at http://127.0.0.1:1/ari" in err


async def test_serve_exits_3_on_wrong_credentials(tmp_path: Path, capsys: Any) -> None:
    async with running_simpbx() as sim:
        code = await cmd_serve(_serve_args(tmp_path, sim.base_url, "wrong"))
    assert code == 3
    err = capsys.readouterr().err
    assert "refused user 'dialer'" in err and "ari.password" in err
