"""The predictive pacer's abandon-budget control: borrowing early, steady thresholds."""

from __future__ import annotations

import math

from dialer.pacing import DialResult, PacingSnapshot, PredictivePacer, TalkResult


def _teach(pacer: PredictivePacer, answered: int, step: float = 0.5) -> float:
    """A steady history: one dial in four answered (after 6-12 s), talks of 60-140 s."""
    every = 4
    at = 0.0
    for i in range(answered * every):
        at += step
        if i % every == 0:
            pacer.on_dial(DialResult(at=at, ring_seconds=6.0 + (i % 7), answered=True))
            pacer.on_talk(TalkResult(at=at, talk_seconds=60.0 + (i % 80), wrap_seconds=15.0))
        else:
            pacer.on_dial(DialResult(at=at, ring_seconds=25.0, answered=False))
    return at


def _abandon(pacer: PredictivePacer, at: float, count: int) -> float:
    for _ in range(count):
        at += 1.0
        pacer.on_dial(DialResult(at=at, ring_seconds=8.0, answered=True, abandoned=True))
    return at


def _snapshot(at: float) -> PacingSnapshot:
    return PacingSnapshot(
        now=at, agents_ready=5, agents_talking=(50.0,) * 15, agents_wrapping=(10.0,) * 5
    )


def test_a_young_campaign_slightly_over_target_keeps_overdialling() -> None:
    # 3 abandons on 83 answered is 3.6 %, but the answers of the next minutes
    # repay it: dropping to progressive would idle agents for a long time.
    pacer = PredictivePacer(target_abandon=0.03)
    at = _abandon(pacer, _teach(pacer, answered=80), 3)
    assert pacer.calls_to_place(_snapshot(at)) > 5


def test_clearly_over_target_falls_back_to_progressive_even_when_young() -> None:
    pacer = PredictivePacer(target_abandon=0.03)
    at = _abandon(pacer, _teach(pacer, answered=80), 6)  # 6 on 86: 7 %
    assert pacer.calls_to_place(_snapshot(at)) == 5


def test_without_borrowing_the_young_campaign_is_progressive() -> None:
    pacer = PredictivePacer(target_abandon=0.03, borrow_seconds=0.0)
    at = _abandon(pacer, _teach(pacer, answered=80), 3)
    assert pacer.calls_to_place(_snapshot(at)) == 5


def _thresholds(pacer: PredictivePacer, slacks: list[float]) -> list[float]:
    return [pacer._threshold(slack=slack, dt=1.0) for slack in slacks]


def test_one_abandon_moves_the_threshold_little() -> None:
    # A steady threshold keeps agents busier than one swinging around the same
    # mean abandon rate (occupancy is concave in the threshold): one abandon
    # (the slack dropping by one) must not cut the threshold by half. Here an
    # answer every 4 s: one abandon is 1/2.6 of the quarter-hour's swing, and
    # the threshold drops by the gain times that (about 11 %).
    pacer = PredictivePacer(target_abandon=0.03)
    _teach(pacer, answered=600, step=1.0)
    before, after = _thresholds(pacer, [8.0, 7.0])
    assert 0.85 * before < after < before, (before, after)


def test_the_threshold_follows_a_lasting_lack_of_slack() -> None:
    pacer = PredictivePacer(target_abandon=0.03)
    _teach(pacer, answered=600, step=1.0)
    start = _thresholds(pacer, [2.0])[0]
    pacer._recent.abandoned = pacer._recent.answered  # recent abandons far over target
    low = _thresholds(pacer, [0.0] * 3600)[-1]
    assert low < start / 4.0, (start, low)


def test_a_small_team_uses_ample_slack_within_the_hour() -> None:
    # An answer every 40 s: the slack regrows one abandon in 33 minutes, but
    # slack already above the reserve is there to be used now.
    pacer = PredictivePacer(target_abandon=0.03)
    _teach(pacer, answered=300, step=10.0)
    pacer.control.integral = math.log(0.002)
    low = _thresholds(pacer, [20.0])[0]
    high = _thresholds(pacer, [20.0] * 1800)[-1]
    assert high > 2.5 * low, (low, high)
