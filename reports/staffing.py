"""Staffing (art. 44-45), pure: Erlang C for inbound, and the outbound planner.

**Inbound, Erlang C.** Calls arrive at random (Poisson), handling times are
exponential, callers wait (M/M/N). With traffic A = calls x handle time / period
(Erlangs) and N agents, the probability that a call waits is Erlang C,

    C(N, A) = N B / (N - A (1 - B)),   B = Erlang B(N, A) by the recursion
    B(0) = 1,  B(n) = A B(n-1) / (n + A B(n-1)),

which is the textbook formula rearranged so that no factorial or power is ever formed
(stable for hundreds of agents). Service level within t seconds:
SL = 1 - C e^{-(N - A) t / h}; average speed of answer ASA = C h / (N - A). The agents
needed are the smallest N > A meeting the service level (and an occupancy cap, if given).
No maintained queueing library was a better fit: the PyPI candidates either pull in
heavy scheduling stacks (pyworkforce: pandas, ortools) or are small and unmaintained;
the formula is ten lines and checked in the tests against published values.

**Outbound, the what-if.** A predictive campaign has no queue of callers: what limits
it is how many conversations the agents can hold. From what the campaign measured so
far (the share of dials that reach a person and an agent, talk and wrap-up times, the
agents' occupancy: talk time over logged-in time) and the list (leads, tries each lead
may get under the caps and retry rules, calling hours per day):

    connects per lead   = 1 - (1 - p)^T           (p: dials that connect, T: tries)
    dials per lead      = (1 - (1 - p)^T) / p
    agent-hours needed  = connects x talk / occupancy / 3600

which gives the agents needed to finish by a date, the calling days a team needs, or what
a team achieves by a date (leads worked, connects, effective conversations, orders).
A lead's tries are spaced by the retry delay, so a list with T tries needs at least
(T - 1) x delay calendar time however many agents work it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of ``agents`` servers offered ``traffic`` Erlangs (no queue)."""
    if agents < 0 or traffic < 0:
        raise ValueError("agents and traffic must be >= 0")
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic * b / (n + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a call waits (M/M/N); 1.0 when the agents cannot keep up."""
    if agents <= traffic:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1.0 - b))


@dataclass(frozen=True, slots=True)
class InboundStaffing:
    agents: int
    traffic: float  # Erlangs
    wait_probability: float
    service_level: float  # share answered within the target time
    average_speed_of_answer: float  # seconds
    occupancy: float
    scheduled: int  # agents to schedule once shrinkage is allowed for


def service_level(
    agents: int, traffic: float, handle_seconds: float, target_seconds: float
) -> float:
    if agents <= traffic:
        return 0.0
    c = erlang_c(agents, traffic)
    return 1.0 - c * math.exp(-(agents - traffic) * target_seconds / handle_seconds)


def inbound_agents(
    calls: float,
    period_seconds: float,
    handle_seconds: float,
    *,
    service_level_target: float = 0.8,
    target_seconds: float = 20.0,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> InboundStaffing:
    """The fewest agents answering ``service_level_target`` of ``calls`` (per
    ``period_seconds``) within ``target_seconds``; ``shrinkage`` (breaks, training:
    0.3 = 30 %) scales the agents to schedule."""
    for name, v in (
        ("calls", calls),
        ("period_seconds", period_seconds),
        ("handle_seconds", handle_seconds),
        ("target_seconds", target_seconds),
    ):
        if not v >= 0 or (name != "calls" and name != "target_seconds" and v == 0):
            raise ValueError(f"{name} must be > 0, got {v!r}")
    if not 0 < service_level_target < 1:
        raise ValueError(f"service_level_target must be in (0, 1), got {service_level_target!r}")
    if not 0 < max_occupancy <= 1 or not 0 <= shrinkage < 1:
        raise ValueError("max_occupancy must be in (0, 1] and shrinkage in [0, 1)")
    traffic = calls * handle_seconds / period_seconds
    n = max(1, math.floor(traffic) + 1)
    while True:
        sl = service_level(n, traffic, handle_seconds, target_seconds)
        if sl >= service_level_target and traffic / n <= max_occupancy:
            break
        n += 1
    c = erlang_c(n, traffic)
    return InboundStaffing(
        agents=n,
        traffic=traffic,
        wait_probability=c,
        service_level=sl,
        average_speed_of_answer=c * handle_seconds / (n - traffic),
        occupancy=traffic / n,
        scheduled=math.ceil(n / (1.0 - shrinkage) - 1e-9),
    )


# --- outbound ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    """What the campaign measured so far (or what a supervisor assumes)."""

    connect_rate: float  # dials that reach a person and an agent
    talk_seconds: float  # mean talk time of a connected call
    occupancy: float  # agents' talk time over logged-in time
    effective_rate: float = 0.0  # effective conversations per connect
    success_rate: float = 0.0  # orders per effective conversation

    def __post_init__(self) -> None:
        if not 0 < self.connect_rate <= 1:
            raise ValueError(f"connect_rate must be in (0, 1], got {self.connect_rate!r}")
        if not self.talk_seconds > 0:
            raise ValueError(f"talk_seconds must be > 0, got {self.talk_seconds!r}")
        if not 0 < self.occupancy <= 1:
            raise ValueError(f"occupancy must be in (0, 1], got {self.occupancy!r}")

    @property
    def connects_per_agent_hour(self) -> float:
        return 3600.0 * self.occupancy / self.talk_seconds


@dataclass(frozen=True, slots=True)
class ListWork:
    """A lead list to work: leads, the tries each may get, the calling hours."""

    leads: int
    tries: int = 1  # min(the campaign's retry tries, the caps' calls in the period)
    retry_delay_days: float = 0.0
    hours_per_day: float = 9.0  # the policy's windows: 09-12 and 14-20
    calling_weekdays: frozenset[int] = frozenset(range(6))  # Monday..Saturday

    def __post_init__(self) -> None:
        if self.leads < 0 or self.tries < 1 or not self.hours_per_day > 0:
            raise ValueError("leads >= 0, tries >= 1 and hours_per_day > 0 are required")
        if not self.calling_weekdays:
            raise ValueError("calling_weekdays: at least one day of the week")


@dataclass(frozen=True, slots=True)
class OutboundPlan:
    agents: int
    calling_days: int
    finish: date | None
    agent_hours: float
    dials: float
    connects: float
    effective: float
    orders: float
    leads_worked: float
    min_calendar_days: float  # the retry spacing's floor, whatever the team


def _per_lead(m: Measured, w: ListWork) -> tuple[float, float]:
    reach = 1.0 - (1.0 - m.connect_rate) ** w.tries
    return reach, reach / m.connect_rate  # connects per lead, dials per lead


def _calling_days_from(start: date, days: int, weekdays: frozenset[int]) -> date:
    """The date of the ``days``-th calling day counting ``start`` as the first candidate."""
    d, seen = start, 0
    while True:
        if d.weekday() in weekdays:
            seen += 1
            if seen >= days:
                return d
        d += timedelta(days=1)


def _calling_days_between(start: date, end: date, weekdays: frozenset[int]) -> int:
    return sum(
        1
        for i in range((end - start).days + 1)
        if (start + timedelta(days=i)).weekday() in weekdays
    )


def _plan(
    m: Measured, w: ListWork, agents: int, days: int, start: date | None, leads_worked: float
) -> OutboundPlan:
    conn_per_lead, dials_per_lead = _per_lead(m, w)
    connects = leads_worked * conn_per_lead
    effective = connects * m.effective_rate
    return OutboundPlan(
        agents=agents,
        calling_days=days,
        finish=None
        if start is None or days == 0
        else _calling_days_from(start, days, w.calling_weekdays),
        agent_hours=connects / m.connects_per_agent_hour,
        dials=leads_worked * dials_per_lead,
        connects=connects,
        effective=effective,
        orders=effective * m.success_rate,
        leads_worked=leads_worked,
        min_calendar_days=(w.tries - 1) * w.retry_delay_days,
    )


def days_for_team(m: Measured, w: ListWork, agents: int, start: date | None = None) -> OutboundPlan:
    """Calling days ``agents`` need to work the whole list."""
    if agents < 1:
        raise ValueError("agents must be >= 1")
    conn_per_lead, _ = _per_lead(m, w)
    hours = w.leads * conn_per_lead / m.connects_per_agent_hour
    days = math.ceil(hours / (agents * w.hours_per_day) - 1e-9)
    return _plan(m, w, agents, days, start, float(w.leads))


def agents_for_date(m: Measured, w: ListWork, start: date, end: date) -> OutboundPlan:
    """The fewest agents that work the whole list in the calling days from ``start`` to
    ``end`` inclusive."""
    days = _calling_days_between(start, end, w.calling_weekdays)
    if days == 0:
        raise ValueError(f"no calling day between {start} and {end}")
    conn_per_lead, _ = _per_lead(m, w)
    hours = w.leads * conn_per_lead / m.connects_per_agent_hour
    agents = max(1, math.ceil(hours / (days * w.hours_per_day) - 1e-9))
    return _plan(m, w, agents, days, start, float(w.leads))


def achieved_by(m: Measured, w: ListWork, agents: int, start: date, end: date) -> OutboundPlan:
    """What ``agents`` achieve from ``start`` to ``end`` inclusive (at most the whole list)."""
    days = _calling_days_between(start, end, w.calling_weekdays)
    return achieved_in_hours(m, w, agents, days * w.hours_per_day, start=start, days=days)


def achieved_in_hours(
    m: Measured,
    w: ListWork,
    agents: int,
    hours: float,
    *,
    start: date | None = None,
    days: int = 0,
) -> OutboundPlan:
    """What ``agents`` achieve in ``hours`` of calling (at most the whole list)."""
    conn_per_lead, _ = _per_lead(m, w)
    connects = agents * hours * m.connects_per_agent_hour
    leads = min(float(w.leads), connects / conn_per_lead) if conn_per_lead else 0.0
    return _plan(m, w, agents, days, start, leads)
