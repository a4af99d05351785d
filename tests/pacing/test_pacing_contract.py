"""The pacing contract: names, parameters, types and the guarantees every pacer gives."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from dialer.pacing import (
    DialResult,
    PacingSnapshot,
    PredictivePacer,
    TalkResult,
    make_pacer,
)

PACERS: list[tuple[str, dict[str, object]]] = [
    ("progressive", {}),
    ("ratio", {"lines_per_agent": 2.5}),
    ("predictive", {"target_abandon": 0.03}),
    ("predictive", {}),
    ("predictive", {"target_abandon": 0.05, "max_lines_per_agent": 3.0}),
]


def snap(
    ready: int = 0,
    talking: tuple[float, ...] = (),
    wrapping: tuple[float, ...] = (),
    dials: tuple[float, ...] = (),
    waiting: int = 0,
    now: float = 100.0,
) -> PacingSnapshot:
    return PacingSnapshot(
        now=now,
        agents_ready=ready,
        agents_talking=talking,
        agents_wrapping=wrapping,
        dials_in_flight=dials,
        customers_waiting=waiting,
    )


def test_contract_import_and_call_shape() -> None:
    pacer = make_pacer("predictive", target_abandon=0.03)
    n = pacer.calls_to_place(snap(ready=2))
    assert isinstance(n, int) and n >= 0
    pacer.on_dial(DialResult(at=1.0, ring_seconds=7.5, answered=True))
    pacer.on_dial(DialResult(2.0, 25.0, False))
    pacer.on_dial(DialResult(at=3.0, ring_seconds=6.0, answered=True, abandoned=True))
    pacer.on_talk(TalkResult(at=4.0, talk_seconds=95.0, wrap_seconds=12.0))


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (
            PacingSnapshot,
            [
                "now",
                "agents_ready",
                "agents_talking",
                "agents_wrapping",
                "dials_in_flight",
                "customers_waiting",
            ],
        ),
        (DialResult, ["at", "ring_seconds", "answered", "abandoned"]),
        (TalkResult, ["at", "talk_seconds", "wrap_seconds"]),
    ],
)
def test_types_are_frozen_dataclasses_with_contract_fields(cls: type, fields: list[str]) -> None:
    assert dataclasses.is_dataclass(cls)
    assert [f.name for f in dataclasses.fields(cls)] == fields
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_dial_result_abandoned_defaults_to_false() -> None:
    assert DialResult(at=0.0, ring_seconds=3.0, answered=True).abandoned is False


def test_snapshot_accepts_lists_and_keeps_tuples() -> None:
    s = PacingSnapshot(1.0, 1, [3.0], [2.0], [1.0, 2.0], 0)  # type: ignore[arg-type]
    assert s.agents_talking == (3.0,) and s.dials_in_flight == (1.0, 2.0)
    assert hash(s) == hash(PacingSnapshot(1.0, 1, (3.0,), (2.0,), (1.0, 2.0), 0))


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: make_pacer("aggressive"), "name"),
        (lambda: make_pacer(""), "name"),
        (lambda: make_pacer("predictive", target_abandon=0.0), "target_abandon"),
        (lambda: make_pacer("predictive", target_abandon=1.0), "target_abandon"),
        (lambda: make_pacer("predictive", target_abandon=-0.1), "target_abandon"),
        (lambda: make_pacer("predictive", target_abandon="3%"), "target_abandon"),
        (lambda: make_pacer("predictive", target_abandon=float("nan")), "target_abandon"),
        (lambda: make_pacer("predictive", max_lines_per_agent=0), "max_lines_per_agent"),
        (lambda: make_pacer("predictive", max_lines_per_agent=-2.0), "max_lines_per_agent"),
        (lambda: make_pacer("predictive", window_seconds=0), "window_seconds"),
        (lambda: make_pacer("predictive", day_seconds=-1), "day_seconds"),
        (lambda: make_pacer("predictive", lines_per_agent=2), "lines_per_agent"),
        (lambda: make_pacer("ratio", lines_per_agent=0), "lines_per_agent"),
        (lambda: make_pacer("ratio", lines_per_agent=-1.5), "lines_per_agent"),
        (lambda: make_pacer("ratio", lines_per_agent=True), "lines_per_agent"),
        (lambda: make_pacer("ratio", lines_per_agent=2, speed=3), "speed"),
        (lambda: make_pacer("progressive", lines_per_agent=2), "lines_per_agent"),
        (lambda: make_pacer("progressive", target_abandon=2.0), "target_abandon"),
    ],
)
def test_bad_names_and_parameters_raise_value_error_naming_them(build: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: PacingSnapshot(now=0.0, agents_ready=-1), "agents_ready"),
        (lambda: PacingSnapshot(now=0.0, agents_ready=0, customers_waiting=-1), "waiting"),
        (lambda: DialResult(at=0.0, ring_seconds=3.0, answered=False, abandoned=True), "abandon"),
        (lambda: DialResult(at=0.0, ring_seconds=-3.0, answered=False), "ring_seconds"),
        (lambda: TalkResult(at=0.0, talk_seconds=-1.0, wrap_seconds=1.0), "talk_seconds"),
        (lambda: TalkResult(at=0.0, talk_seconds=1.0, wrap_seconds=-1.0), "wrap_seconds"),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(make: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        make()  # type: ignore[operator]


NO_AGENT = [
    snap(),
    snap(dials=(1.0, 5.0, 12.0)),
    snap(dials=(1.0,), waiting=2),
]


@pytest.mark.parametrize(("name", "params"), PACERS)
@pytest.mark.parametrize("snapshot", NO_AGENT)
def test_no_agent_logged_in_means_no_call(
    name: str, params: dict[str, object], snapshot: PacingSnapshot
) -> None:
    pacer = make_pacer(name, **params)
    _teach(pacer)
    assert pacer.calls_to_place(snapshot) == 0


SOME = [
    snap(ready=3),
    snap(ready=1, dials=tuple(float(i) for i in range(40))),
    snap(ready=0, talking=(5.0, 300.0), wrapping=(14.0,), dials=(1.0,), waiting=3),
    snap(ready=2, waiting=5),
    snap(ready=0, talking=(1.0,) * 30, wrapping=(20.0,) * 10),
    snap(ready=50, talking=(90.0,) * 30),
]


@pytest.mark.parametrize(("name", "params"), PACERS)
@pytest.mark.parametrize("snapshot", SOME)
def test_calls_to_place_is_a_non_negative_int(
    name: str, params: dict[str, object], snapshot: PacingSnapshot
) -> None:
    pacer = make_pacer(name, **params)
    for trained in (False, True):
        if trained:
            _teach(pacer)
        n = pacer.calls_to_place(snapshot)
        assert isinstance(n, int) and not isinstance(n, bool)
        assert n >= 0


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (snap(ready=3), 3),
        (snap(ready=3, dials=(1.0,)), 2),
        (snap(ready=3, dials=(1.0, 2.0, 3.0, 4.0)), 0),
        (snap(ready=2, waiting=1), 1),
        (snap(ready=0, talking=(10.0,), dials=()), 0),
        (snap(ready=4, talking=(10.0,), wrapping=(3.0,), dials=(2.0,), waiting=1), 2),
    ],
)
def test_progressive_covers_each_ready_agent_once(snapshot: PacingSnapshot, expected: int) -> None:
    assert make_pacer("progressive").calls_to_place(snapshot) == expected


@pytest.mark.parametrize(
    ("lines", "snapshot", "expected"),
    [
        (2.0, snap(ready=3), 6),
        (2.0, snap(ready=3, dials=(1.0,) * 4), 2),
        (2.0, snap(ready=3, dials=(1.0,) * 9), 0),
        (1.5, snap(ready=3), 5),
        (0.5, snap(ready=3), 2),
        (3.0, snap(ready=0, talking=(5.0,)), 0),
    ],
)
def test_ratio_keeps_lines_per_ready_agent_in_flight(
    lines: float, snapshot: PacingSnapshot, expected: int
) -> None:
    assert make_pacer("ratio", lines_per_agent=lines).calls_to_place(snapshot) == expected


def _teach(pacer: object, answered: int = 200, answer_rate: float = 0.25, at: float = 0.0) -> float:
    """Feed a steady history: answers after ~8 s, failures after 25 s, talk 100 s."""
    assert hasattr(pacer, "on_dial") and hasattr(pacer, "on_talk")
    every = round(1.0 / answer_rate)
    total = answered * every
    for i in range(total):
        at += 0.5
        if i % every == 0:
            pacer.on_dial(DialResult(at=at, ring_seconds=6.0 + (i % 7), answered=True))
            pacer.on_talk(TalkResult(at=at, talk_seconds=60.0 + (i % 80), wrap_seconds=15.0))
        else:
            pacer.on_dial(DialResult(at=at, ring_seconds=25.0, answered=False))
    return at


def test_predictive_is_progressive_until_it_has_data() -> None:
    pacer = make_pacer("predictive")
    for s in SOME:
        assert pacer.calls_to_place(s) == make_pacer("progressive").calls_to_place(s)


def test_predictive_overdials_once_it_has_learnt() -> None:
    pacer = make_pacer("predictive")
    at = _teach(pacer)
    s = snap(ready=5, talking=(50.0,) * 15, wrapping=(10.0,) * 5, now=at)
    assert pacer.calls_to_place(s) > make_pacer("progressive").calls_to_place(s)


def test_predictive_learns_the_answer_probability() -> None:
    for rate in (0.1, 0.25, 0.5):
        pacer = make_pacer("predictive")
        assert isinstance(pacer, PredictivePacer)
        _teach(pacer, answer_rate=rate)
        pacer.calls_to_place(snap(ready=1, now=1e6))
        assert pacer._p_answer == pytest.approx(rate, abs=0.03)


def test_predictive_dials_more_when_answers_are_rarer() -> None:
    counts = []
    for rate in (0.5, 0.25, 0.1):
        pacer = make_pacer("predictive")
        at = _teach(pacer, answer_rate=rate)
        counts.append(pacer.calls_to_place(snap(ready=4, wrapping=(12.0,) * 4, now=at)))
    assert counts[0] < counts[1] < counts[2]


def test_predictive_falls_back_to_progressive_while_over_target() -> None:
    pacer = make_pacer("predictive", target_abandon=0.03)
    at = _teach(pacer)
    s = snap(ready=5, talking=(50.0,) * 15, wrapping=(10.0,) * 5, now=at)
    assert pacer.calls_to_place(s) > 5
    for _ in range(12):  # 12 abandons on ~212 answered: 5.7 % > 3 %
        at += 1.0
        pacer.on_dial(DialResult(at=at, ring_seconds=8.0, answered=True, abandoned=True))
    s = dataclasses.replace(s, now=at)
    assert pacer.calls_to_place(s) == 5


def test_abandon_window_is_configurable_and_old_abandons_expire() -> None:
    pacer = make_pacer("predictive", window_seconds=3600.0, day_seconds=3600.0)
    at = 0.0
    for _ in range(20):
        at += 1.0
        pacer.on_dial(DialResult(at=at, ring_seconds=8.0, answered=True, abandoned=True))
    at = _teach(pacer, at=at + 4000.0)
    s = snap(ready=5, talking=(50.0,) * 15, wrapping=(10.0,) * 5, now=at)
    assert pacer.calls_to_place(s) > 5  # the burst is out of the 1 h window

    default = make_pacer("predictive")
    at = 0.0
    for _ in range(20):
        at += 1.0
        default.on_dial(DialResult(at=at, ring_seconds=8.0, answered=True, abandoned=True))
    at = _teach(default, at=at + 4000.0)
    assert default.calls_to_place(dataclasses.replace(s, now=at)) == 5  # 30 days remember


def test_max_lines_per_agent_caps_calls_in_flight() -> None:
    pacer = make_pacer("predictive", max_lines_per_agent=1.5)
    at = _teach(pacer, answer_rate=0.1)
    s = snap(ready=4, talking=(50.0,) * 4, dials=(1.0,) * 5, now=at)
    assert pacer.calls_to_place(s) <= 1.5 * 8 - 5


def test_pacing_module_is_pure() -> None:
    source = Path(__file__).parents[2] / "dialer" / "pacing.py"
    tree = ast.parse(source.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    forbidden = {"asyncio", "aiohttp", "redis", "sqlalchemy", "panoramisk", "time", "random"}
    assert not imported & forbidden, imported & forbidden
