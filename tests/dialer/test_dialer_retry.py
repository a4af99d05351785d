"""Retry rules after a dial (pure), and the purity of the dialer's extra pure modules."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.outcomes import DialOutcome
from dialer.retry import NextKind, after_dial

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Rule:
    max_tries: int
    delay_s: int


RULES = {"no_answer": Rule(3, 3600), "busy": Rule(3, 900), "congestion": Rule(2, 1800)}


@pytest.mark.parametrize(
    ("outcome", "connected", "before", "kind", "delay", "counted"),
    [
        (DialOutcome.BUSY, False, 0, NextKind.RETRY, 900, True),
        (DialOutcome.BUSY, False, 2, NextKind.DONE, None, True),
        (DialOutcome.NO_ANSWER, False, 1, NextKind.RETRY, 3600, True),
        (DialOutcome.REJECTED, False, 0, NextKind.RETRY, 3600, True),
        (DialOutcome.MACHINE, False, 0, NextKind.RETRY, 3600, True),
        (DialOutcome.CONGESTION, False, 1, NextKind.DONE, None, True),
        (DialOutcome.FAILED, False, 1, NextKind.RETRY, 1800, False),
        (DialOutcome.UNALLOCATED, False, 0, NextKind.REFUSE, None, True),
        (DialOutcome.CANCELLED, False, 0, NextKind.RETRY, 0, False),
        (DialOutcome.ANSWERED, True, 0, NextKind.AWAIT_DISPOSITION, None, True),
        (DialOutcome.ANSWERED, False, 0, NextKind.RETRY, 3600, True),  # abandoned
    ],
)
def test_after_dial(
    outcome: DialOutcome,
    connected: bool,
    before: int,
    kind: NextKind,
    delay: int | None,
    counted: bool,
) -> None:
    nxt = after_dial(outcome, connected=connected, tries_before=before, rules=RULES, now=NOW)
    assert nxt.kind is kind
    assert nxt.counted is counted
    if delay is None:
        assert nxt.at is None
    else:
        assert nxt.at == NOW + timedelta(seconds=delay)
    assert nxt.reason


def test_retry_and_outcomes_are_pure() -> None:
    probe = (
        "import importlib, json, sys\n"
        "for n in ('dialer.retry', 'dialer.outcomes', 'dialer.fsm', 'dialer.agent_pool',"
        " 'dialer.dispositions'):\n    importlib.import_module(n)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('asyncio', 'aiohttp', 'redis', 'sqlalchemy', 'aiosqlite', 'asyncpg'))))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
