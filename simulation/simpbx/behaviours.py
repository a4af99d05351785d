"""Scripted callee behaviours of the simulated world (dialplan/extensions.conf, as data).

A customer ``Local/<number>@sim-customers`` behaves by the last digit of the
number unless ``SIM_BEHAVIOUR`` is set on the channel; ``SIM_RING`` and
``SIM_TALK`` override the seconds of ringing and talking. Tests can also pin a
behaviour per number (override table), which wins over both.

| digit | behaviour | default ring / talk |
| 1 | human | 2 / 30 |      | 6 | machine | 3 / 30 |
| 2 | human | 2 / 3600 |    | 7 | human | 0 / 30 |
| 3 | busy  | 0 |           | 8 | reject (cause 21) | 4 |
| 4 | congestion | 0 |      | 9 | human | 2 / 5 |
| 5 | noanswer (600 s) |    | 0 | unallocated (cause 1) |

``hangup_waiting`` is not in the dialplan: a person who answers and hangs up
after ``patience`` seconds unless bridged with another channel by then.

``early`` (``SIM_BEHAVIOUR=early``) is the test dialplan's early hang-up: rings
``SIM_RING`` seconds (default 1), answers and hangs up at once (cause 16), before
anybody can talk to them. It is not in the captured reference dialplan; the
README's real-Asterisk section gives the four dialplan lines that add it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    BUSY = "busy"
    CONGESTION = "congestion"
    NOANSWER = "noanswer"
    REJECT = "reject"
    UNALLOCATED = "unallocated"
    HANGUP_WAITING = "hangup_waiting"
    EARLY = "early"


# The values SIM_BEHAVIOUR may take in the real dialplan (anything else: "i" extension).
DIALPLAN_KINDS = frozenset(
    {"human", "machine", "busy", "congestion", "noanswer", "reject", "unallocated", "early"}
)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One callee. ``None`` means "the dialplan default for this kind"."""

    kind: Kind
    ring: float | None = None
    talk: float | None = None
    patience: float | None = None

    @classmethod
    def human(cls, ring: float = 2, talk: float = 30) -> Behaviour:
        return cls(Kind.HUMAN, ring, talk)

    @classmethod
    def machine(cls, ring: float = 3, talk: float = 30) -> Behaviour:
        return cls(Kind.MACHINE, ring, talk)

    @classmethod
    def busy(cls, ring: float = 0) -> Behaviour:
        return cls(Kind.BUSY, ring)

    @classmethod
    def congestion(cls, ring: float = 0) -> Behaviour:
        return cls(Kind.CONGESTION, ring)

    @classmethod
    def noanswer(cls) -> Behaviour:
        return cls(Kind.NOANSWER)

    @classmethod
    def reject(cls, ring: float = 4) -> Behaviour:
        return cls(Kind.REJECT, ring)

    @classmethod
    def unallocated(cls) -> Behaviour:
        return cls(Kind.UNALLOCATED)

    @classmethod
    def early(cls, ring: float = 1) -> Behaviour:
        return cls(Kind.EARLY, ring)

    @classmethod
    def hangup_waiting(cls, ring: float = 2, patience: float = 3, talk: float = 30) -> Behaviour:
        return cls(Kind.HANGUP_WAITING, ring, talk, patience)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Behaviour:
        """``{"kind": "busy", "ring": 1, "talk": 5, "patience": 3}`` (control plane)."""
        raw_kind = data.get("kind", data.get("behaviour"))
        try:
            kind = Kind(str(raw_kind))
        except ValueError:
            allowed = ", ".join(k.value for k in Kind)
            raise ValueError(f"behaviour kind {raw_kind!r} is not one of: {allowed}") from None

        def num(key: str) -> float | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, int | float | str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ValueError(f"behaviour field {key!r} must be a number of seconds, not {value!r}")

        return cls(kind, num("ring"), num("talk"), num("patience"))

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "ring": self.ring,
            "talk": self.talk,
            "patience": self.patience,
        }


# Defaults from [sim-behaviour]: digit -> (goto target, SIM_RING default, SIM_TALK default).
# A ``Set`` step precedes the Goto for digits 2, 7 and 9 (they set SIM_TALK / SIM_RING).
DIGIT_MAP: dict[str, tuple[Kind, str | None, str | None]] = {
    "1": (Kind.HUMAN, None, None),
    "2": (Kind.HUMAN, None, "3600"),
    "3": (Kind.BUSY, None, None),
    "4": (Kind.CONGESTION, None, None),
    "5": (Kind.NOANSWER, None, None),
    "6": (Kind.MACHINE, None, None),
    "7": (Kind.HUMAN, "0", None),
    "8": (Kind.REJECT, None, None),
    "9": (Kind.HUMAN, None, "5"),
    "0": (Kind.UNALLOCATED, None, None),
}

# Default SIM_RING per behaviour extension ([sim-behaviour] ``Set(RING=...)``).
DEFAULT_RING: dict[Kind, str] = {
    Kind.HUMAN: "2",
    Kind.HANGUP_WAITING: "2",
    Kind.MACHINE: "3",
    Kind.BUSY: "0",
    Kind.CONGESTION: "0",
    Kind.REJECT: "4",
    Kind.EARLY: "1",
}
DEFAULT_TALK = "30"
NOANSWER_WAIT = 600.0


def fmt_seconds(value: float) -> str:
    """Dialplan-style number: ``2`` not ``2.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


def seconds(text: str, default: float = 0.0) -> float:
    """Asterisk's Wait() reads a number; garbage counts as 0."""
    try:
        return max(0.0, float(text))
    except ValueError:
        return default
