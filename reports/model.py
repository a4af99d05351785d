"""The figures of a report as values (pure, no I/O): the appendix-4 efficiency model and
the KPIs of art. 46.

The appendix-4 model (外呼营销运营效率管理模型) is a chain: seats x calls per seat =
outbound volume; volume x connect rate = connects; connects x effective-conversation
rate = effective conversations; effective conversations x success rate = orders. The
definitions follow the appendix's notes (说明 1-9):

* outbound volume (外呼量): calls actually dialled (the gate's refusals are not calls);
* connects (接通量): calls a person answered (a machine answering is not a connect);
* effective conversations (有效通话量): connects where the agent and the customer
  finished a real conversation, i.e. the call ended with an order, a refusal or a
  callback agreed (the dispositions in ``EFFECTIVE_DISPOSITIONS``);
* success rate (成功率): orders over effective conversations (note 9: orders are
  counted "among the effective conversations");
* seats (座席数): agents who handled at least one call in the period (the attempt log
  knows no log-in times; a seat that never got a call does not show);
* complaint rate (art. 46, 投诉率): complaints about the calls of the period over
  their connects; abandon rate: abandoned over connects (the policy's 3 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

#: Dispositions that mean a conversation took place (same set as the attempt log's funnel).
EFFECTIVE_DISPOSITIONS = ("order", "refused", "callback")


class Grouping(StrEnum):
    """What a report's rows are: one per day, hour of day, agent, campaign, list, caller ID."""

    TOTAL = "total"
    DAY = "day"
    HOUR = "hour"
    AGENT = "agent"
    CAMPAIGN = "campaign"
    LIST = "list"
    CALLER_ID = "caller_id"


class Kpi(StrEnum):
    """The KPIs art. 46 names, plus the abandon rate the policy caps."""

    VOLUME = "volume"
    CONNECT_RATE = "connect_rate"
    SUCCESS_RATE = "success_rate"
    COMPLAINT_RATE = "complaint_rate"
    ABANDON_RATE = "abandon_rate"


KPI_LABELS: dict[Kpi, tuple[str, str]] = {
    Kpi.VOLUME: ("外呼量", "outbound volume"),
    Kpi.CONNECT_RATE: ("接通率", "connect rate"),
    Kpi.SUCCESS_RATE: ("成功率", "success rate"),
    Kpi.COMPLAINT_RATE: ("投诉率", "complaint rate"),
    Kpi.ABANDON_RATE: ("放弃率", "abandon rate"),
}


@dataclass(frozen=True, slots=True)
class Counts:
    """Additive counts of one bucket; every figure of a report derives from these."""

    dialled: int = 0
    refused: int = 0
    answered: int = 0
    connects: int = 0
    bridged: int = 0
    effective: int = 0
    orders: int = 0
    abandoned: int = 0
    machines: int = 0
    complaints: int = 0
    talk_seconds: float = 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f) + getattr(other, f) for f in COUNT_FIELDS))

    def kpi(self, kpi: Kpi) -> float:
        return {
            Kpi.VOLUME: float(self.dialled),
            Kpi.CONNECT_RATE: ratio(self.connects, self.dialled),
            Kpi.SUCCESS_RATE: ratio(self.orders, self.effective),
            Kpi.COMPLAINT_RATE: ratio(self.complaints, self.connects),
            Kpi.ABANDON_RATE: ratio(self.abandoned, self.connects),
        }[kpi]

    def trials(self, kpi: Kpi) -> int:
        """The denominator of a rate KPI (the volume's is the volume itself)."""
        return {
            Kpi.VOLUME: self.dialled,
            Kpi.CONNECT_RATE: self.dialled,
            Kpi.SUCCESS_RATE: self.effective,
            Kpi.COMPLAINT_RATE: self.connects,
            Kpi.ABANDON_RATE: self.connects,
        }[kpi]


COUNT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Counts))


def counts_of(values: Sequence[Any]) -> Counts:
    """Counts from a row of sums in ``COUNT_FIELDS`` order (NULL sums are 0)."""
    n = [int(v or 0) for v in values[:-1]]
    return Counts(
        dialled=n[0],
        refused=n[1],
        answered=n[2],
        connects=n[3],
        bridged=n[4],
        effective=n[5],
        orders=n[6],
        abandoned=n[7],
        machines=n[8],
        complaints=n[9],
        talk_seconds=float(values[-1] or 0.0),
    )


def ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


@dataclass(frozen=True, slots=True)
class EfficiencyModel:
    """Appendix 4 for one row of a report. ``seats`` is None where the grouping cannot
    say (a list or a caller ID is worked by agents the rollup does not tie to it)."""

    seats: int | None
    calls_per_seat: float | None
    volume: int
    connect_rate: float
    connects: int
    effective_rate: float
    effective: int
    success_rate: float
    orders: int
    complaint_rate: float
    abandon_rate: float
    complaints: int
    abandoned: int
    talk_seconds: float

    @classmethod
    def of(cls, counts: Counts, seats: int | None) -> EfficiencyModel:
        return cls(
            seats=seats,
            calls_per_seat=ratio(counts.dialled, seats) if seats else None,
            volume=counts.dialled,
            connect_rate=ratio(counts.connects, counts.dialled),
            connects=counts.connects,
            effective_rate=ratio(counts.effective, counts.connects),
            effective=counts.effective,
            success_rate=ratio(counts.orders, counts.effective),
            orders=counts.orders,
            complaint_rate=ratio(counts.complaints, counts.connects),
            abandon_rate=ratio(counts.abandoned, counts.connects),
            complaints=counts.complaints,
            abandoned=counts.abandoned,
            talk_seconds=counts.talk_seconds,
        )


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One row: its key (a day, an hour, an agent ...), the counts and the model."""

    key: str
    counts: Counts
    model: EfficiencyModel


#: CSV / table columns: (attribute of EfficiencyModel, Chinese header, English header).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("seats", "座席数", "seats"),
    ("calls_per_seat", "座席平均外呼量", "calls per seat"),
    ("volume", "外呼量", "outbound volume"),
    ("connect_rate", "接通率", "connect rate"),
    ("connects", "接通量", "connects"),
    ("effective_rate", "有效通话率", "effective-conversation rate"),
    ("effective", "有效通话量", "effective conversations"),
    ("success_rate", "成功率", "success rate"),
    ("orders", "订单量", "orders"),
    ("complaints", "投诉量", "complaints"),
    ("complaint_rate", "投诉率", "complaint rate"),
    ("abandoned", "放弃量", "abandoned"),
    ("abandon_rate", "放弃率", "abandon rate"),
)
RATE_COLUMNS = frozenset(
    {"connect_rate", "effective_rate", "success_rate", "complaint_rate", "abandon_rate"}
)


def format_cell(attr: str, value: float | int | None) -> str:
    """A cell as a person reads it: rates in per cent with 2 decimals, averages 1 decimal."""
    if value is None:
        return ""
    if attr in RATE_COLUMNS:
        return f"{100.0 * float(value):.2f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
