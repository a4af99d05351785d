"""Real checks of the predictive pacer on short campaigns with fixed seeds (a few seconds)."""

from __future__ import annotations

import pytest

from dialer.pacing import make_pacer
from simulation.pacing_sim import CampaignConfig, simulate


def test_predictive_keeps_abandons_under_target_and_beats_progressive() -> None:
    campaign = CampaignConfig(
        duration=3600.0, agents=((0.0, 25),), answer_rate=((0.0, 0.25),), seed=11
    )
    progressive = simulate(campaign, make_pacer("progressive"))
    predictive = simulate(campaign, make_pacer("predictive", target_abandon=0.03))
    assert predictive.answered > 300
    assert predictive.abandon_rate <= 0.03, predictive
    assert predictive.occupancy > progressive.occupancy + 0.1, (predictive, progressive)


@pytest.mark.parametrize("answer_rate", [0.1, 0.35])
def test_small_team_stays_under_target(answer_rate: float) -> None:
    # Two hours: a team of 6 spends most of its first hour learning, and at a
    # 35 % answer rate progressive is already hard to beat in that hour.
    campaign = CampaignConfig(
        duration=7200.0, agents=((0.0, 6),), answer_rate=((0.0, answer_rate),), seed=5
    )
    progressive = simulate(campaign, make_pacer("progressive"))
    predictive = simulate(campaign, make_pacer("predictive"))
    assert predictive.abandon_rate <= 0.03, predictive
    assert predictive.occupancy > progressive.occupancy, (predictive, progressive)


def test_a_stricter_target_abandons_less() -> None:
    campaign = CampaignConfig(
        duration=3600.0, agents=((0.0, 25),), answer_rate=((0.0, 0.25),), seed=3
    )
    loose = simulate(campaign, make_pacer("predictive", target_abandon=0.05))
    strict = simulate(campaign, make_pacer("predictive", target_abandon=0.01))
    assert strict.abandon_rate <= 0.01 < loose.abandon_rate <= 0.05, (strict, loose)
    assert strict.occupancy < loose.occupancy
