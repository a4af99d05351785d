"""The Prometheus rules and the Grafana dashboard in docker/ use only metric families the
dialer exposes (a renamed metric would leave a silent, empty panel or a dead alert)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from dialer.agent_pool import AgentStatus
from dialer.metrics import DialerMetrics, LiveSource

DOCKER = Path(__file__).resolve().parents[2] / "docker"
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def _exposed() -> set[str]:
    m = DialerMetrics()
    m.watch(LiveSource(lambda: [("c", [AgentStatus.READY], 1, 0)]))
    m.watch_agi({("dialer_check", "ok"): 1})
    return {f.name for f in text_string_to_metric_families(m.exposition().decode())}


def _used(text: str) -> set[str]:
    names = set()
    for name in re.findall(r"\bdialer_[a-z_]+", text):
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


def test_rules_and_dashboard_use_exposed_families() -> None:
    exposed = _exposed()
    rules = (DOCKER / "prometheus" / "dialer-rules.yml").read_text(encoding="utf-8")
    dashboard = json.loads((DOCKER / "grafana" / "dialer-dashboard.json").read_text("utf-8"))
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    used = _used(rules) | _used(exprs)
    assert used and used <= exposed, used - exposed
    # every family the dialer exposes is on the dashboard
    assert exposed <= _used(exprs) | {"dialer_agents"}, exposed - _used(exprs)
