"""Back-pressure from the PBX's delays around the pacer (pure, table-driven)."""

from __future__ import annotations

import pytest

from dialer.backpressure import Backpressure, BackpressureLimits


def test_fast_pbx_places_what_the_pacer_wants() -> None:
    bp = Backpressure()
    for _ in range(5):
        bp.originate_sent()
        bp.originate_answered(0.02)
        bp.connected(0.05, late=False, limit=2.0)
    t = bp.limit(7)
    assert t.allowed == 7 and t.reason is None


def test_slow_originates_hold_back_calls_in_proportion_and_say_why() -> None:
    bp = Backpressure(BackpressureLimits(originate_slow=0.5, smoothing=1.0))
    bp.originate_sent()
    bp.originate_answered(2.0)
    t = bp.limit(8)
    assert t.allowed == 2  # 8 * 0.5 / 2.0
    assert t.reason is not None and "originate answers take 2.00 s" in t.reason


def test_late_bridge_entries_hold_back_calls() -> None:
    bp = Backpressure(BackpressureLimits(connect_slow=0.5, smoothing=1.0))
    bp.connected(0.3, late=True, limit=2.0)  # a late connect counts as at least the limit
    t = bp.limit(4)
    assert t.allowed == 1 and t.reason is not None and "agent's bridge" in t.reason
    assert bp.late_connects == 1


def test_one_probe_when_nothing_is_outstanding_so_the_estimate_recovers() -> None:
    bp = Backpressure(BackpressureLimits(originate_slow=0.5, smoothing=1.0))
    bp.originate_sent()
    bp.originate_answered(50.0)
    assert bp.limit(3).allowed == 1
    bp.originate_sent()
    assert bp.limit(3).allowed == 0
    bp.originate_answered(0.1)
    assert bp.limit(3).allowed == 3


@pytest.mark.parametrize("wanted", [0, -1])
def test_nothing_wanted_nothing_placed(wanted: int) -> None:
    assert Backpressure().limit(wanted).allowed == 0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        BackpressureLimits(originate_slow=0)
    with pytest.raises(ValueError, match="smoothing"):
        BackpressureLimits(smoothing=0)
