"""``GET /metrics`` after a campaign run against simpbx: every family is there and the
counters agree with the attempt log in the database; an AGI session is counted by route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from agi_scripts.app import AgiService
from agi_scripts.app import AgiSettings as AgiAppSettings
from agi_scripts.server import AgiServerConfig
from agi_scripts.testing import FakeAsterisk, call_env
from dialer.app import http_app
from simulation.demo_data import numbers_ending

DATA = Path(__file__).resolve().parents[1] / "agi" / "data"
FAMILIES = {
    "dialer_calls_placed", "dialer_calls_answered", "dialer_calls_abandoned",
    "dialer_connects", "dialer_gate_decisions", "dialer_agi_sessions",
    "dialer_originate_seconds", "dialer_answer_to_bridge_seconds", "dialer_agents",
    "dialer_pacing_lines", "dialer_pacing_lines_per_agent", "dialer_customers_waiting",
    "dialer_errors",
}  # fmt: skip


def _samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _total(samples: dict[str, Any], name: str, **match: str) -> float:
    return sum(
        v
        for labels, v in samples.get(name, {}).items()
        if all(dict(labels).get(k) == want for k, want in match.items())
    )


async def test_metrics_after_a_campaign_match_the_database(
    scenario_factory: Any, tmp_path: Path
) -> None:
    # people (1, 9), busy (3), no such number (0), machines (6); two on the blacklist
    numbers = numbers_ending("13906", 20, seed=5)
    async with scenario_factory(numbers, blacklist=numbers[:2], pacing="progressive") as scn:
        stack = scn.stack
        await scn.burst(3, max_talk=0.5)
        agi = await AgiService.start(
            AgiAppSettings(
                server=AgiServerConfig(host="127.0.0.1", port=0),
                db_url=stack.settings.database.url,
            ),
            gate=stack.stores.gate,
            policy=stack.policy,
        )
        try:
            stack.metrics.watch_agi(agi.server.route_stats)
            template = (DATA / "fastagi_desk-check_5550001_env.raw").read_bytes()
            await FakeAsterisk("127.0.0.1", agi.server.port).run(
                call_env(template, script="no-such-route")
            )
            client = TestClient(TestServer(http_app(stack)))
            await client.start_server()
            try:
                r = await client.get("/metrics")
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
                text = await r.text()
            finally:
                await client.close()
        finally:
            await agi.stop()
        families = {f.name for f in text_string_to_metric_families(text)}
        assert FAMILIES <= families, FAMILIES - families
        s = _samples(text)
        funnel = await stack.attempts.funnel("scn")
        assert funnel.attempts > 0 and funnel.connects > 0
        assert _total(s, "dialer_calls_placed_total", campaign="scn") == funnel.attempts
        rows = await stack.attempts.for_campaign("scn")
        assert _total(s, "dialer_calls_answered_total", campaign="scn") == sum(
            r.answered for r in rows
        )
        assert _total(s, "dialer_connects_total", campaign="scn") == funnel.connects
        assert _total(s, "dialer_calls_abandoned_total", campaign="scn") == funnel.abandoned
        refused = _total(s, "dialer_gate_decisions_total", campaign="scn", result="refused")
        allowed = _total(s, "dialer_gate_decisions_total", campaign="scn", result="allowed")
        assert refused == funnel.refused_by_gate >= 2
        assert _total(s, "dialer_gate_decisions_total", reason="blacklisted") >= 2
        assert allowed == funnel.attempts
        assert _total(s, "dialer_originate_seconds_count", leg="customer") == funnel.attempts
        assert _total(s, "dialer_originate_seconds_count", leg="agent") == 3  # the log-ins
        assert _total(s, "dialer_answer_to_bridge_seconds_count") == funnel.connects
        assert _total(s, "dialer_agi_sessions_total", route="unknown", outcome="no_route") == 1
        # agents by state: the three simulated agents, all logged out after the run
        assert _total(s, "dialer_agents", campaign="scn") == 3
        assert _total(s, "dialer_pacing_lines", campaign="scn") == 0
