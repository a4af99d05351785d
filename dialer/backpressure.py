"""Back-pressure from the PBX: fewer new calls while Asterisk answers slowly.

Pure: no I/O, no clock. The pacer (``pacing-contract.md``) decides how many
calls the agents could take; it knows nothing of the PBX. When Asterisk is
saturated its replies slow down before anything fails: the originate's HTTP
answer takes longer, and a customer given to an agent takes longer to enter the
agent's bridge (``addChannel`` to ``ChannelEnteredBridge``). Past the 2-second
connect limit every such call is an abandon, so the runner asks for fewer calls
than the pacer wants while either delay is over its threshold, in proportion to
how far over it is, and says why.

Both delays are smoothed (exponential moving average) per sample. A call that
missed the connect limit counts as a sample of at least the limit. So that the
estimate can recover, one call is always allowed when none is outstanding at the
PBX (no originate waiting for its answer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Throttle:
    """How many of the calls the pacer wanted may be placed now, and why fewer."""

    allowed: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BackpressureLimits:
    """``originate_slow``: originate answer time (s) from which calls are held back;
    ``connect_slow``: assignment-to-bridge time (s) from which calls are held back;
    ``smoothing``: weight of a new sample in the moving averages."""

    originate_slow: float = 0.5
    connect_slow: float = 0.5
    smoothing: float = 0.2

    def __post_init__(self) -> None:
        if self.originate_slow <= 0 or self.connect_slow <= 0:
            raise ValueError("back-pressure thresholds must be positive seconds")
        if not 0 < self.smoothing <= 1:
            raise ValueError("back-pressure smoothing must be in (0, 1]")


class Backpressure:
    """Moving averages of the PBX's delays and the limit they put on new calls."""

    def __init__(self, limits: BackpressureLimits | None = None) -> None:
        self.limits = limits or BackpressureLimits()
        self.originate_latency: float | None = None
        self.connect_latency: float | None = None
        self.outstanding = 0
        self.late_connects = 0

    def _mix(self, old: float | None, sample: float) -> float:
        if old is None:
            return sample
        a = self.limits.smoothing
        return (1 - a) * old + a * sample

    def originate_sent(self) -> None:
        self.outstanding += 1

    def originate_not_sent(self) -> None:
        """The originate was refused before it left (no latency to learn)."""
        self.outstanding = max(0, self.outstanding - 1)

    def originate_answered(self, seconds: float) -> None:
        """The originate's HTTP answer came (or failed) after ``seconds``."""
        self.outstanding = max(0, self.outstanding - 1)
        self.originate_latency = self._mix(self.originate_latency, max(0.0, seconds))

    def connected(self, assign_to_bridge: float, *, late: bool, limit: float) -> None:
        """A customer entered the agent's bridge ``assign_to_bridge`` seconds after the
        agent was chosen; ``late``: after the connect limit (``limit`` seconds)."""
        sample = max(0.0, assign_to_bridge)
        if late:
            self.late_connects += 1
            sample = max(sample, limit)
        self.connect_latency = self._mix(self.connect_latency, sample)

    def limit(self, wanted: int) -> Throttle:
        """The calls that may be placed out of the ``wanted`` the pacer asked for."""
        if wanted <= 0:
            return Throttle(max(0, wanted))
        lim = self.limits
        ratio = 1.0
        reasons: list[str] = []
        if self.originate_latency is not None and self.originate_latency > lim.originate_slow:
            ratio = min(ratio, lim.originate_slow / self.originate_latency)
            reasons.append(
                f"originate answers take {self.originate_latency:.2f} s "
                f"(over {lim.originate_slow:.2f} s)"
            )
        if self.connect_latency is not None and self.connect_latency > lim.connect_slow:
            ratio = min(ratio, lim.connect_slow / self.connect_latency)
            reasons.append(
                f"customers take {self.connect_latency:.2f} s to enter the agent's bridge "
                f"(over {lim.connect_slow:.2f} s)"
            )
        if not reasons:
            return Throttle(wanted)
        allowed = math.floor(wanted * ratio)
        if allowed == 0 and self.outstanding == 0:
            allowed = 1  # one probe keeps the averages moving
        why = "PBX slow: " + "; ".join(reasons) + f"; placing {allowed} of {wanted}"
        return Throttle(allowed, why)
