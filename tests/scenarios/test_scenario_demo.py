"""``dialer demo``: one command, no setup, prints the campaign funnel."""

from __future__ import annotations

from typing import Any

import pytest

from dialer.cli import main
from simulation.demo import DemoOptions, run_demo
from simulation.demo_data import sample_numbers


async def test_demo_runs_and_prints_the_funnel(capsys: Any) -> None:
    code = await run_demo(DemoOptions(seconds=4, agents=3, leads=30, progress=False, time_scale=20))
    out = capsys.readouterr().out
    assert code == 0
    assert "Campaign 'demo' funnel" in out
    for label in (
        "attempts",
        "connect rate",
        "effective conversations",
        "orders",
        "abandon rate",
        "agent occupancy",
        "refused by the compliance gate",
    ):
        assert label in out
    line = next(x for x in out.splitlines() if "refused by the compliance gate" in x)
    assert line.split()[-1] == "5"  # the 5 sample numbers on the do-not-call list
    err = capsys.readouterr().err
    for n in sample_numbers(30, seed=2026):
        assert n not in out + err, "a person reads this output: numbers are masked"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["demo", "--seconds", "0"], "--seconds"), (["demo", "--agents", "0"], "--agents")],
)
def test_demo_bad_options_exit_2(argv: list[str], needle: str, capsys: Any) -> None:
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
