"""No side doors to a phone line (issue 10, item 1), against simpbx and the real stores.

The dialer originates only (a) customer legs carrying the gate's allowed
decision for that attempt and (b) agents' softphones at the agent directory's
endpoint. Checked at the HTTP API, at the call-control port itself, and by
walking every originate the runner made in a whole campaign.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from compliance.model import Decision, Reason, ReasonCode
from dialer.adapters import AriCallControl
from dialer.agent_directory import AgentDirectory, DirectoryError
from dialer.app import running
from dialer.http_api import make_api_app
from dialer.legs import AgentLeg, CustomerLeg, OriginateRefused
from simulation.demo_data import numbers_ending

CUSTOMER = "Local/{number}@sim-customers"
ROOT = Path(__file__).resolve().parents[2]


def _posts(scn: Any) -> list[Any]:
    return [r for r in scn.sim.requests if r.method == "POST" and r.path == "/channels"]


async def test_login_refuses_an_endpoint_in_the_body_and_unknown_agents(
    scenario_factory: Any,
) -> None:
    async with scenario_factory([], overrides={"drain_timeout": 2.0}) as scn:
        stack = scn.stack
        client = TestClient(TestServer(make_api_app(stack, token="t0k")))
        await client.start_server()
        h = {"Authorization": "Bearer t0k"}
        try:
            async with running(stack):
                before = len(_posts(scn))
                r = await client.post(
                    "/api/agents/201/login",
                    json={"campaign": "scn", "endpoint": "PJSIP/13800138000@carrier"},
                    headers=h,
                )
                body = await r.json()
                assert r.status == 400 and body["field"] == "endpoint", body
                assert "agent directory" in body["error"]
                # an agent no administrator added: refused, nothing dialled
                r = await client.post("/api/agents/x-77/login", json={"campaign": "scn"}, headers=h)
                body = await r.json()
                assert r.status == 403 and "dialer agent add x-77" in body["error"], body
                assert len(_posts(scn)) == before, "a refused login originated a call"
                assert stack.runner.campaigns["scn"].pool.get("201") is None
                assert stack.runner.campaigns["scn"].pool.get("x-77") is None
                # a directory agent logs in at the directory's endpoint only
                r = await client.post("/api/agents/201/login", json={"campaign": "scn"}, headers=h)
                assert r.status == 200, await r.text()
                endpoints = [p.query["endpoint"] for p in _posts(scn)[before:]]
                assert endpoints == ["Local/201@sim-agents"]
                await stack.runner.agent_logout("201")
        finally:
            await client.close()


async def test_the_call_control_port_refuses_every_originate_its_leg_does_not_allow(
    scenario_factory: Any,
) -> None:
    async with scenario_factory([], overrides={"drain_timeout": 2.0}) as scn:
        directory = scn.stack.directory
        assert directory is not None
        control = AriCallControl(scn.stack.client, directory=directory, customer_endpoint=CUSTOMER)
        allowed = Decision(allowed=True, policy_version="t")
        refused = Decision(
            allowed=False,
            reasons=(Reason(ReasonCode.BLACKLISTED, "part 1 §1.3", "on the list"),),
        )
        number = "13800138001"

        async def originate(leg: Any, **over: Any) -> None:
            kwargs: dict[str, Any] = {
                "channel_id": "dl-a1",
                "endpoint": CUSTOMER.format(number=number),
                "caller_id": "01058001234",
                "ring_timeout": 5,
                "app_args": ("customer", "scn", "a1"),
                "variables": {},
            }
            kwargs.update(over)
            await control.originate(leg=leg, **kwargs)

        good = CustomerLeg("a1", number, "01058001234", allowed)
        cases: list[tuple[Any, dict[str, Any], str]] = [
            (CustomerLeg("a1", number, "01058001234", refused), {}, "gate refused"),
            (good, {"channel_id": "dl-other"}, "not attempt a1's"),
            (good, {"endpoint": CUSTOMER.format(number="13900139000")}, "customer endpoint"),
            (good, {"endpoint": "PJSIP/13800138001@carrier"}, "customer endpoint"),
            (good, {"caller_id": "13912345678"}, "caller ID"),
            (AgentLeg("x-77"), {"channel_id": "ag-x-77", "endpoint": "PJSIP/x"}, "directory"),
            (
                AgentLeg("201"),
                {"channel_id": "ag-201", "endpoint": CUSTOMER.format(number=number)},
                "not the directory's",
            ),
            (AgentLeg("201"), {"channel_id": "dl-a1", "endpoint": "Local/201@sim-agents"}, "agent"),
        ]
        for leg, over, why in cases:
            with pytest.raises(OriginateRefused, match=why):
                await originate(leg, **over)
        assert _posts(scn) == [], "a refused originate reached the PBX"
        await originate(good)  # the one that is allowed goes through
        assert [p.query["channelId"] for p in _posts(scn)] == ["dl-a1"]
        await control.hangup("dl-a1")


async def test_every_originate_of_a_campaign_is_a_gated_customer_or_a_directory_agent(
    scenario_factory: Any,
) -> None:
    numbers = numbers_ending("2", 6, seed=5) + numbers_ending("4", 6, seed=6)
    async with scenario_factory(numbers, blacklist=numbers[:2]) as scn:
        await scn.burst(3, max_talk=0.5)
        directory = scn.stack.directory
        assert directory is not None
        entries = {e.agent_id: e.endpoint for e in await directory.list_all()}
        posts = _posts(scn)
        assert posts
        for p in posts:
            cid = p.query["channelId"]
            if cid.startswith("dl-"):
                attempt = cid[3:]
                logged = await scn.stack.stores.ledger.decisions_for_attempt(attempt)
                assert any(d.allowed and d.reserved for d in logged), (cid, logged)
            else:
                assert cid.startswith("ag-"), cid
                agent = p.query["appArgs"].split(",")[1]
                assert p.query["endpoint"] == entries[agent], p.query
        dialled = set(scn.originated_numbers())
        assert not dialled & set(numbers[:2]), "a blacklisted number was originated"


def test_every_originate_in_the_code_carries_its_leg() -> None:
    """Only the call-control adapter talks to ``AriClient.originate``; every other call to
    an ``originate`` method in production code passes ``leg=`` (no future side door)."""
    offenders: list[str] = []
    for folder in ("dialer", "agi_scripts", "compliance", "recordings"):
        for path in (ROOT / folder).rglob("*.py"):
            if "ari" in path.relative_to(ROOT).parts[1:2]:
                continue  # the typed ARI client itself
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "originate"
                ):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                target = ast.unparse(node.func.value)
                if target == "self.client" and path.name == "adapters.py":
                    continue  # AriCallControl: admit() runs first
                if not any(k.arg == "leg" for k in node.keywords):
                    offenders.append(where)
    assert offenders == [], offenders


async def test_directory_refuses_bad_entries(sqlite_url: str) -> None:
    from compliance.tables import open_engine

    engine = await open_engine(sqlite_url)
    try:
        directory = AgentDirectory(engine)
        await directory.add("701", "PJSIP/701", pbx="pbx1", added_by="ann")
        with pytest.raises(DirectoryError, match="already in the directory"):
            await directory.add("701", "PJSIP/702", pbx="pbx1", added_by="ann")
        with pytest.raises(DirectoryError, match="TECH/RESOURCE"):
            await directory.add("702", "13800138000", pbx="pbx1", added_by="ann")
        with pytest.raises(DirectoryError, match="agent id"):
            await directory.add("../x", "PJSIP/1", pbx="pbx1", added_by="ann")
        assert await directory.endpoint_of("701") == "PJSIP/701"
        assert await directory.remove("701") and await directory.endpoint_of("701") is None
    finally:
        await engine.dispose()


def test_agent_cli_add_list_remove(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from dialer.cli import main

    assert main(["agent", "add", "701", "--endpoint", "PJSIP/701", "--db", sqlite_url]) == 0
    assert main(["agent", "add", "701", "--endpoint", "PJSIP/9", "--db", sqlite_url]) == 2
    assert main(["agent", "add", "702", "--endpoint", "1380013", "--db", sqlite_url]) == 2
    capsys.readouterr()
    assert main(["agent", "list", "--json", "--db", sqlite_url]) == 0
    assert '"endpoint": "PJSIP/701"' in capsys.readouterr().out
    assert main(["agent", "remove", "701", "--db", sqlite_url]) == 0
    assert main(["agent", "remove", "701", "--db", sqlite_url]) == 2
