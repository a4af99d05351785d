"""A real check of the predictive pacer on one short medium-team campaign (fixed seed)."""

from __future__ import annotations

from dialer.pacing import make_pacer
from dialer.pacing_sim import CampaignConfig, simulate


def test_predictive_keeps_abandons_under_target_and_beats_progressive() -> None:
    campaign = CampaignConfig(
        duration=3600.0, agents=((0.0, 25),), answer_rate=((0.0, 0.25),), seed=11
    )
    progressive = simulate(campaign, make_pacer("progressive"))
    predictive = simulate(campaign, make_pacer("predictive", target_abandon=0.03))
    assert predictive.answered > 300
    assert predictive.abandon_rate <= 0.03, predictive
    assert predictive.occupancy > progressive.occupancy + 0.1, (predictive, progressive)
