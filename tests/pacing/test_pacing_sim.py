"""The campaign simulator itself: conservation, determinism, the 2 s connect rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from dialer.pacing import DialResult, PacingSnapshot, TalkResult, make_pacer
from simulation.pacing_sim import CampaignConfig, SimResult, simulate


def config(**changes: object) -> CampaignConfig:
    base: dict[str, object] = {
        "duration": 1800.0,
        "agents": ((0.0, 10),),
        "answer_rate": ((0.0, 0.25),),
        "seed": 7,
    }
    base.update(changes)
    return CampaignConfig(**base)  # type: ignore[arg-type]


@dataclass
class Recorder:
    """Wraps a pacer and keeps everything the simulator told it."""

    inner: object
    dials: list[DialResult] = field(default_factory=list)
    talks: list[TalkResult] = field(default_factory=list)
    snapshots: list[PacingSnapshot] = field(default_factory=list)

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        self.snapshots.append(snapshot)
        return self.inner.calls_to_place(snapshot)  # type: ignore[attr-defined, no-any-return]

    def on_dial(self, result: DialResult) -> None:
        self.dials.append(result)
        self.inner.on_dial(result)  # type: ignore[attr-defined]

    def on_talk(self, result: TalkResult) -> None:
        self.talks.append(result)
        self.inner.on_talk(result)  # type: ignore[attr-defined]


def check_conservation(result: SimResult, recorder: Recorder) -> None:
    assert result.calls == result.answered + result.failed
    assert result.answered == result.connected + result.abandoned
    assert len(recorder.dials) == result.calls
    assert sum(d.answered for d in recorder.dials) == result.answered
    assert sum(d.abandoned for d in recorder.dials) == result.abandoned
    assert 0.0 <= result.occupancy <= 1.0


@pytest.mark.parametrize(
    ("agents", "answer"),
    [
        (((0.0, 1),), ((0.0, 0.3),)),
        (((0.0, 6),), ((0.0, 0.1),)),
        (((0.0, 25),), ((0.0, 0.35),)),
        (((0.0, 10), (600.0, 20)), ((0.0, 0.3), (900.0, 0.12))),
    ],
)
def test_progressive_never_abandons_when_agents_do_not_leave(
    agents: tuple[tuple[float, int], ...], answer: tuple[tuple[float, float], ...]
) -> None:
    recorder = Recorder(make_pacer("progressive"))
    result = simulate(config(agents=agents, answer_rate=answer), recorder)
    check_conservation(result, recorder)
    assert result.answered > 0
    assert result.abandoned == 0


@pytest.mark.parametrize(
    ("name", "params"), [("ratio", {"lines_per_agent": 4.0}), ("predictive", {})]
)
def test_calls_are_conserved(name: str, params: dict[str, object]) -> None:
    recorder = Recorder(make_pacer(name, **params))
    result = simulate(config(agents=((0.0, 10), (900.0, 4))), recorder)
    check_conservation(result, recorder)
    assert len(recorder.talks) <= result.connected


def test_same_seed_same_result_other_seed_other_result() -> None:
    first = simulate(config(), make_pacer("ratio", lines_per_agent=3.0))
    again = simulate(config(), make_pacer("ratio", lines_per_agent=3.0))
    other = simulate(config(seed=8), make_pacer("ratio", lines_per_agent=3.0))
    assert first == again
    assert first != other


def test_overdialling_abandons_and_reports_answered_and_abandoned() -> None:
    recorder = Recorder(make_pacer("ratio", lines_per_agent=8.0))
    result = simulate(config(answer_rate=((0.0, 0.9),)), recorder)
    check_conservation(result, recorder)
    assert result.abandon_rate > 0.3
    abandoned = [d for d in recorder.dials if d.abandoned]
    assert abandoned and all(d.answered for d in abandoned)


def test_an_agent_freeing_within_the_connect_limit_gets_the_customer() -> None:
    # Calls end in about a second: a customer answering while every agent is
    # busy is usually still connected inside the 2 s limit.
    quick = config(talk_mean=0.5, wrap_mean=0.3, agents=((0.0, 2),), answer_rate=((0.0, 0.9),))
    result = simulate(quick, make_pacer("ratio", lines_per_agent=3.0))
    assert result.connected_after_wait > 0
    assert result.abandon_rate < 0.5
    none = simulate(
        CampaignConfig(**{**quick.__dict__, "connect_limit": 0.0}),
        make_pacer("ratio", lines_per_agent=3.0),
    )
    assert none.connected_after_wait == 0
    assert none.abandoned > result.abandoned


def test_progressive_can_abandon_when_agents_leave_mid_call() -> None:
    leaving = config(agents=((0.0, 30), (600.0, 2)), answer_rate=((0.0, 0.3),), duration=1200.0)
    result = simulate(leaving, make_pacer("progressive"))
    assert result.abandoned > 0


def test_occupancy_counts_talk_over_logged_in_time() -> None:
    nobody_answers = simulate(config(answer_rate=((0.0, 0.0),)), make_pacer("progressive"))
    assert nobody_answers.answered == 0 and nobody_answers.occupancy == 0.0
    assert nobody_answers.logged_in_seconds == pytest.approx(10 * 1800.0)
    half_day = simulate(
        config(agents=((0.0, 10), (900.0, 0))), make_pacer("ratio", lines_per_agent=5.0)
    )
    assert half_day.logged_in_seconds <= 10 * 1800.0
    assert 0.3 < half_day.occupancy <= 1.0


def test_snapshots_reflect_the_world() -> None:
    recorder = Recorder(make_pacer("ratio", lines_per_agent=2.0))
    simulate(config(agents=((0.0, 5),)), recorder)
    for s in recorder.snapshots:
        assert s.agents_logged_in <= 5
        assert all(x >= 0 for x in s.dials_in_flight + s.agents_talking + s.agents_wrapping)
        assert all(x <= 25.0 + 1e-9 for x in s.dials_in_flight)  # the ring timeout
    assert recorder.snapshots[0].agents_ready == 5


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"duration": 0.0}, "duration"),
        ({"talk_mean": -1.0}, "talk_mean"),
        ({"fail_fast_share": 1.5}, "fail_fast_share"),
        ({"talk_distribution": "weibull"}, "talk_distribution"),
        ({"agents": ((10.0, 5),)}, "agents"),
        ({"agents": ((0.0, -5),)}, "agents"),
        ({"answer_rate": ((0.0, 0.2), (5.0, 1.2))}, "answer_rate"),
        ({"connect_limit": -2.0}, "connect_limit"),
    ],
)
def test_bad_config_names_the_field(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        config(**changes)


def test_a_pacer_breaking_the_contract_is_reported() -> None:
    class Negative:
        def calls_to_place(self, snapshot: PacingSnapshot) -> int:
            return -1

        def on_dial(self, result: DialResult) -> None:
            raise AssertionError("no call was placed")

        def on_talk(self, result: TalkResult) -> None:
            raise AssertionError("no call was placed")

    with pytest.raises(ValueError, match="calls_to_place"):
        simulate(config(), Negative())
