"""Prometheus metrics of ``dialer serve`` (``GET /metrics``).

Counters and histograms are fed by thin decorators around the runner's ports, put in
place by the composition root, so the runner itself knows nothing of monitoring:

* ``MeteredAttempts`` (the attempt log): a call placed when its row goes to
  ``originating``; answered, connected to an agent and abandoned from the one update
  that closes the call (``stage=done``); the answer-to-bridge latency from the
  answer's own update to the call's ``connected_at``;
* ``MeteredGate``: every decision of the compliance gate, by result and by the first
  reason code of a refusal (the codes are a closed set, so the label stays small);
* ``MeteredControl`` (ARI call control): the originate round trip, and failures.

Gauges are read when Prometheus scrapes: agents by state and lines in flight per
campaign from the runner, AGI sessions by route and outcome from the FastAGI server's
own tally. Errors: originate failures, gate outages, and every log record at ERROR or
above, by logger.

Families (all prefixed ``dialer_``): ``calls_placed_total``, ``calls_answered_total``,
``calls_abandoned_total``, ``connects_total`` (campaign); ``gate_decisions_total``
(campaign, result, reason); ``agi_sessions_total`` (route, outcome);
``originate_seconds``, ``answer_to_bridge_seconds`` (histograms); ``agents`` (campaign,
state); ``pacing_lines`` and ``pacing_lines_per_agent`` (campaign); ``customers_waiting``
(campaign); ``errors_total`` (kind).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.model import Decision
from dialer.agent_pool import AgentStatus
from dialer.ari.errors import AriError
from dialer.attempts import AttemptLog, Stage
from dialer.http_api import ACCESS_KEY, Access
from dialer.legs import CustomerLeg, Leg
from dialer.ports import CallControl, Gate, GateUnavailable
from dialer.runner import Runner

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Latency buckets (seconds): originate is a REST round trip; answer-to-bridge is
#: bounded by the 2 s connect limit.
ORIGINATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BRIDGE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


class DialerMetrics:
    """The registry of one dialer process and its counters."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.placed = Counter("dialer_calls_placed", "Calls originated", ["campaign"], registry=r)
        self.answered = Counter(
            "dialer_calls_answered", "Calls answered (person or machine)", ["campaign"], registry=r
        )
        self.abandoned = Counter(
            "dialer_calls_abandoned",
            "Answered calls no agent took within the connect limit",
            ["campaign"],
            registry=r,
        )
        self.connects = Counter(
            "dialer_connects", "Calls connected to an agent", ["campaign"], registry=r
        )
        self.decisions = Counter(
            "dialer_gate_decisions",
            "Compliance gate decisions",
            ["campaign", "result", "reason"],
            registry=r,
        )
        self.errors = Counter("dialer_errors", "Errors by kind", ["kind"], registry=r)
        self.originate = Histogram(
            "dialer_originate_seconds",
            "ARI originate round trip, by leg (customer, agent)",
            ["leg"],
            buckets=ORIGINATE_BUCKETS,
            registry=r,
        )
        self.bridge = Histogram(
            "dialer_answer_to_bridge_seconds",
            "From the customer's answer to the agent's bridge",
            buckets=BRIDGE_BUCKETS,
            registry=r,
        )
        self._agi = _AgiCollector({})  # the family shows even with the FastAGI server off
        r.register(self._agi)
        self.errors.labels("originate_failed")
        self.errors.labels("gate_unavailable")

    def watch(self, live: LiveSource) -> None:
        """Gauges read at each scrape from ``live``."""
        self.registry.register(_LiveCollector(live))

    def watch_agi(self, tally: Mapping[tuple[str, str], int]) -> None:
        """The FastAGI server's sessions by (route, outcome), read at each scrape."""
        self._agi.tally = tally

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def log_handler(self) -> logging.Handler:
        """A handler counting ERROR records by logger (install on the root logger)."""
        return _ErrorCounter(self.errors)


class _ErrorCounter(logging.Handler):
    def __init__(self, errors: Counter) -> None:
        super().__init__(level=logging.ERROR)
        self._errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        self._errors.labels(f"log:{record.name.split('.')[0]}").inc()


# --- decorators around the ports -----------------------------------------------------------


class MeteredAttempts(AttemptLog):
    """The attempt log, counting calls as their rows move (see the module doc)."""

    def __init__(self, engine: AsyncEngine, metrics: DialerMetrics) -> None:
        super().__init__(engine)
        self._m = metrics
        self._campaign: dict[str, str] = {}
        self._answered_at: dict[str, datetime] = {}

    async def insert(self, rec: Any) -> None:
        await super().insert(rec)
        self._campaign[rec.attempt_id] = rec.campaign

    async def update(self, attempt_id: str, at: datetime, **values: Any) -> None:
        await super().update(attempt_id, at, **values)
        campaign = self._campaign.get(attempt_id, "")
        stage = values.get("stage")
        if stage == Stage.ORIGINATING:
            self._m.placed.labels(campaign).inc()
        if values.get("answered") and stage != Stage.DONE:
            # the answer is written on its own, stamped with the wall clock of the answer
            self._answered_at[attempt_id] = at
        if stage not in (Stage.DONE, Stage.REFUSED):
            return
        answered_at = self._answered_at.pop(attempt_id, None)
        self._campaign.pop(attempt_id, None)
        if stage != Stage.DONE:
            return
        if values.get("answered"):
            self._m.answered.labels(campaign).inc()
        if values.get("abandoned"):
            self._m.abandoned.labels(campaign).inc()
        if values.get("connected"):
            self._m.connects.labels(campaign).inc()
            connected_at = values.get("connected_at")
            if answered_at is not None and isinstance(connected_at, datetime):
                self._m.bridge.observe(max(0.0, (connected_at - answered_at).total_seconds()))


class MeteredGate:
    """The gate, counting each decision by result and first reason code."""

    def __init__(self, inner: Gate, metrics: DialerMetrics) -> None:
        self._inner = inner
        self._m = metrics

    async def check_and_reserve(
        self, number: str, campaign: str, product: str, at: datetime, **kwargs: Any
    ) -> Decision:
        try:
            decision = await self._inner.check_and_reserve(number, campaign, product, at, **kwargs)
        except GateUnavailable:
            self._m.errors.labels("gate_unavailable").inc()
            raise
        if decision.allowed:
            self._m.decisions.labels(campaign, "allowed", "").inc()
        else:
            codes = decision.codes
            reason = codes[0].value if codes else "unknown"
            self._m.decisions.labels(campaign, "refused", reason).inc()
        return decision


class MeteredControl:
    """ARI call control, timing the originate; everything else passes through. It keeps
    the rest of the port."""

    def __init__(self, inner: CallControl, metrics: DialerMetrics) -> None:
        self._inner = inner
        self._m = metrics

    async def originate(self, *, leg: Leg, **kwargs: Any) -> None:
        kind = "customer" if isinstance(leg, CustomerLeg) else "agent"
        started = time.perf_counter()
        try:
            await self._inner.originate(leg=leg, **kwargs)
        except AriError:
            self._m.errors.labels("originate_failed").inc()
            raise
        finally:
            self._m.originate.labels(kind).observe(time.perf_counter() - started)

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int
    ) -> None:
        await self._inner.continue_in_dialplan(channel_id, context, extension, priority)

    async def hangup(self, channel_id: str) -> None:
        await self._inner.hangup(channel_id)

    async def ensure_bridge(self, bridge_id: str) -> None:
        await self._inner.ensure_bridge(bridge_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._inner.destroy_bridge(bridge_id)

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self._inner.add_to_bridge(bridge_id, channel_id)

    async def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None:
        await self._inner.record_bridge(bridge_id, name, fmt)

    async def stop_recording(self, name: str) -> None:
        await self._inner.stop_recording(name)

    async def play(self, channel_id: str, media: str, playback_id: str) -> None:
        await self._inner.play(channel_id, media, playback_id)

    async def channel_ids(self) -> set[str]:
        return await self._inner.channel_ids()

    async def channel_exists(self, channel_id: str) -> bool:
        return await self._inner.channel_exists(channel_id)

    async def bridge_ids(self) -> set[str]:
        return await self._inner.bridge_ids()


# --- read at scrape time ---------------------------------------------------------------------


#: Per campaign: (name, the agents' states, lines dialling, customers waiting).
CampaignLines = tuple[str, Sequence[AgentStatus], int, int]


class LiveSource:
    """What the gauges read: ``campaigns()`` gives ``CampaignLines`` per campaign."""

    def __init__(self, campaigns: Callable[[], Iterable[CampaignLines]]) -> None:
        self.campaigns = campaigns


def live_lines(runner: Runner) -> list[CampaignLines]:
    out: list[CampaignLines] = []
    for name, run in runner.campaigns.items():
        figures = runner.figures(name)
        states = [a.status for a in run.pool.agents()]
        out.append((name, states, figures.dials_in_flight, figures.customers_waiting))
    return out


def mount_metrics(app: web.Application, metrics: DialerMetrics) -> None:
    """``GET /metrics`` on the dialer API, with the API's read access (a supervisor's or
    compliance user's token, or the shared token: Prometheus sends it as a bearer)."""

    async def scrape(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", scrape)
    app[ACCESS_KEY]["GET /metrics"] = Access.READ


class _LiveCollector(Collector):
    def __init__(self, live: LiveSource) -> None:
        self._live = live

    def collect(self) -> Iterable[Any]:
        agents = GaugeMetricFamily("dialer_agents", "Agents by state", labels=["campaign", "state"])
        lines = GaugeMetricFamily(
            "dialer_pacing_lines", "Customer lines dialling now", labels=["campaign"]
        )
        per_agent = GaugeMetricFamily(
            "dialer_pacing_lines_per_agent",
            "Lines dialling per logged-in agent",
            labels=["campaign"],
        )
        waiting = GaugeMetricFamily(
            "dialer_customers_waiting",
            "Answered customers waiting for an agent",
            labels=["campaign"],
        )
        for campaign, states, in_flight, customers in self._live.campaigns():
            for state in AgentStatus:
                agents.add_metric([campaign, state.value], sum(1 for s in states if s is state))
            logged = sum(1 for s in states if s is not AgentStatus.OFFLINE)
            lines.add_metric([campaign], in_flight)
            per_agent.add_metric([campaign], in_flight / logged if logged else 0.0)
            waiting.add_metric([campaign], customers)
        yield from (agents, lines, per_agent, waiting)


class _AgiCollector(Collector):
    def __init__(self, tally: Mapping[tuple[str, str], int]) -> None:
        self.tally = tally

    def collect(self) -> Iterable[Any]:
        agi = CounterMetricFamily(
            "dialer_agi_sessions",
            "FastAGI sessions by route and outcome",
            labels=["route", "outcome"],
        )
        for (route, outcome), n in sorted(dict(self.tally).items()):
            agi.add_metric([route, outcome], n)
        yield agi
