"""The predictive pacer's abandon-budget control: borrowing early, recovering after a burst."""

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


def _recovered_threshold(agents: int) -> float:
    """Threshold after ten minutes of ample slack, starting from the floor."""
    pacer = PredictivePacer(target_abandon=0.03)
    _teach(pacer, answered=600, step=5.0)  # an answer every 20 s: an abandon earned in 11 min
    pacer._agents = agents
    pacer.control.integral = math.log(0.002)
    threshold = 0.0
    for _ in range(600):
        threshold = pacer._threshold(slack=20.0, dt=1.0)
    return threshold


def test_a_bigger_team_recovers_from_a_burst_within_minutes() -> None:
    large, small = _recovered_threshold(25), _recovered_threshold(6)
    assert large > 0.01, large
    # A small team earns its slack back slowly: it climbs no faster than that.
    assert small < large / 2.0, (small, large)
