"""Staffing: Erlang C against published values; the outbound planner against the project's
own pacing simulator (simulation.pacing_sim with the predictive pacer) on two campaigns."""

from __future__ import annotations

from datetime import date

import pytest

from dialer.pacing import PredictivePacer
from reports.staffing import (
    ListWork,
    Measured,
    achieved_by,
    achieved_in_hours,
    agents_for_date,
    days_for_team,
    erlang_b,
    erlang_c,
    inbound_agents,
    service_level,
)
from simulation.pacing_sim import CampaignConfig, simulate


def test_erlang_c_published_values() -> None:
    # Exact: ErlangC[3, 2] = 4/9 (Wolfram Language documentation, basic example).
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, abs=1e-12)
    # Textbook M/M/10 with 6 Erlangs (120 customers/h, 3 min each): "about 0.10".
    assert erlang_c(10, 6.0) == pytest.approx(0.1013, abs=1e-4)
    # Call Centre Helper's worked example: 100 calls per 30 min, 180 s handle time,
    # 80 % in 20 s: 10 Erlangs; 11 agents: 68.21 % wait, ASA 122.8 s, 39.0 % in 20 s;
    # 14 agents are needed and give 88.8 %.
    assert erlang_c(11, 10.0) == pytest.approx(0.6821, abs=1e-4)
    assert service_level(11, 10.0, 180, 20) == pytest.approx(0.390, abs=1e-3)
    plan = inbound_agents(100, 1800, 180, service_level_target=0.8, target_seconds=20)
    assert plan.agents == 14
    assert plan.service_level == pytest.approx(0.888, abs=1e-3)
    # 360 calls per 30 min, 4 min each, 55 agents, 15 s target: 23.87 % wait,
    # ASA 8.18 s, 84.59 % answered within 15 s (the classic step-by-step Erlang C example).
    assert erlang_c(55, 48.0) == pytest.approx(0.2387, abs=1e-4)
    assert service_level(55, 48.0, 240, 15) == pytest.approx(0.8459, abs=1e-4)
    big = inbound_agents(360, 1800, 240, service_level_target=0.8, target_seconds=15)
    assert big.agents == 55 and big.average_speed_of_answer == pytest.approx(8.18, abs=0.01)


def test_erlang_formula_is_stable_for_large_teams_and_checks_input() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert 0 < erlang_c(600, 560.0) < 1  # no overflow where a^N / N! would be inf
    assert erlang_c(5, 5.0) == 1.0  # agents cannot keep up
    with_shrinkage = inbound_agents(100, 1800, 180, shrinkage=0.3)
    assert with_shrinkage.scheduled == 20  # 14 / 0.7
    capped = inbound_agents(100, 1800, 180, max_occupancy=0.65)
    assert capped.agents == 16 and capped.occupancy <= 0.65
    with pytest.raises(ValueError, match="service_level_target"):
        inbound_agents(100, 1800, 180, service_level_target=80)
    with pytest.raises(ValueError, match="handle_seconds"):
        inbound_agents(100, 1800, 0)


@pytest.mark.parametrize(("agents", "answer_rate"), [(25, 0.20), (6, 0.35)])
def test_outbound_plan_matches_the_simulator(agents: int, answer_rate: float) -> None:
    """Measure the first hour of a campaign, plan the next three hours, compare with a
    3-hour simulated run (another seed): connects and dials within 10 %."""
    first = simulate(
        CampaignConfig(
            duration=3600, agents=((0.0, agents),), answer_rate=((0.0, answer_rate),), seed=1
        ),
        PredictivePacer(),
    )
    measured = Measured(
        connect_rate=first.connected / first.calls,
        talk_seconds=first.talk_seconds / first.connected,
        occupancy=first.occupancy,
    )
    run = simulate(
        CampaignConfig(
            duration=3 * 3600, agents=((0.0, agents),), answer_rate=((0.0, answer_rate),), seed=2
        ),
        PredictivePacer(),
    )
    plan = achieved_in_hours(measured, ListWork(leads=10**9), agents, 3.0)
    assert plan.connects == pytest.approx(run.connected, rel=0.10)
    assert plan.dials == pytest.approx(run.calls, rel=0.10)
    # The list the simulated team really worked (one try per lead) takes them 3 hours.
    work = ListWork(leads=run.calls, tries=1, hours_per_day=3.0)
    assert days_for_team(measured, work, agents).calling_days == pytest.approx(1, abs=1)
    hours = run.calls * measured.connect_rate / measured.connects_per_agent_hour / agents
    assert hours == pytest.approx(3.0, rel=0.10)


def test_outbound_list_what_ifs() -> None:
    m = Measured(
        connect_rate=0.25, talk_seconds=120, occupancy=0.8, effective_rate=0.6, success_rate=0.2
    )
    work = ListWork(leads=12_000, tries=2, retry_delay_days=7)
    # 12,000 x (1 - 0.75^2) = 5,250 connects; 24 connects per agent-hour -> 218.75 h
    plan = days_for_team(m, work, agents=10, start=date(2026, 11, 30))
    assert plan.connects == pytest.approx(5250)
    assert plan.dials == pytest.approx(21000)
    assert plan.agent_hours == pytest.approx(218.75)
    assert plan.calling_days == 3  # 218.75 h / (10 agents x 9 h)
    assert plan.finish == date(2026, 12, 2)
    assert plan.orders == pytest.approx(5250 * 0.6 * 0.2)
    assert plan.min_calendar_days == 7
    # Two calling days (Saturday 5 and Monday 7 December; Sunday is not a calling day)
    need = agents_for_date(m, work, date(2026, 12, 5), date(2026, 12, 7))
    assert need.calling_days == 2 and need.agents == 13
    got = achieved_by(m, work, 5, date(2026, 12, 5), date(2026, 12, 7))
    assert got.connects == pytest.approx(5 * 18 * 24)
    assert got.leads_worked == pytest.approx(2160 / 0.4375)
    assert achieved_by(m, work, 100, date(2026, 12, 5), date(2026, 12, 7)).leads_worked == 12_000
    with pytest.raises(ValueError, match="no calling day"):
        agents_for_date(m, work, date(2026, 12, 6), date(2026, 12, 6))
    with pytest.raises(ValueError, match="connect_rate"):
        Measured(connect_rate=0, talk_seconds=1, occupancy=0.5)
