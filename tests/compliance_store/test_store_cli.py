"""Compliance subcommands of ``dialer``: exit codes, masked output, bad input changes nothing."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from store_helpers import snapshot

from compliance.cli import sample_dir
from compliance.tables import open_engine
from dialer.cli import main

FULL_NUMBER = re.compile(r"1[3-9]\d{9}")
AT = "2026-11-03T10:30"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def db_state(url: str) -> dict[str, list[tuple[object, ...]]]:
    async def go() -> dict[str, list[tuple[object, ...]]]:
        engine = await open_engine(url)
        try:
            return await snapshot(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Global options for a fresh SQLite file with the sample campaign, policy and leads."""
    opts = [
        "--db",
        f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3",
        "--policy",
        str(sample_dir() / "policy.toml"),
    ]
    assert run(capsys, "campaign", "create", str(sample_dir() / "campaign.toml"), *opts)[0] == 0
    code, out, _ = run(
        capsys,
        "leads",
        "import",
        str(sample_dir() / "leads.csv"),
        "--campaign",
        "spring-loans",
        *opts,
    )
    assert code == 0 and "1 duplicates merged" in out
    return opts


def test_check_exit_codes_and_masked_output(
    db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "check", "13800138000", "--campaign", "spring-loans", "--at", AT, *db
    )
    assert code == 0 and "ALLOWED" in out and "138****8000" in out
    assert run(capsys, "dnc", "add", "13800138000", "--reason", "complaint", *db)[0] == 0
    code, out, _ = run(
        capsys, "check", "13800138000", "--campaign", "spring-loans", "--at", AT, "--json", *db
    )
    data = json.loads(out)
    assert code == 1 and not data["allowed"] and data["codes"] == ["blacklisted"]
    assert data["number"] == "138****8000"
    code, out, _ = run(capsys, "dnc", "list", *db)
    assert "138****8000" in out and not FULL_NUMBER.search(out)
    code, out, _ = run(capsys, "dnc", "audit", *db)
    assert code == 0 and "add" in out and not FULL_NUMBER.search(out)


def test_reserve_then_cap(db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--campaign", "spring-loans", "--at", AT, *db]
    assert (
        run(capsys, "check", "13900139000", "--product", "loan", "--reserve", "a1", *base)[0] == 0
    )
    assert (
        run(capsys, "check", "13900139000", "--product", "card", "--reserve", "a2", *base)[0] == 0
    )
    code, out, _ = run(capsys, "check", "13900139000", "--product", "card", *base)
    assert code == 1 and "monthly_cap" in out and "product_interval" in out
    assert not FULL_NUMBER.search(out)


def test_bad_input_exits_2_and_changes_nothing(
    db: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = db[1]
    before = db_state(url)
    code, _, err = run(capsys, "check", "1380013800x", "--campaign", "spring-loans", *db)
    assert code == 2 and "NUMBER" in err and "1380013800x" not in err
    code, _, err = run(capsys, "check", "13800138000", "--campaign", "ghost", *db)
    assert code == 2 and "unknown campaign 'ghost'" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("number,name\n13800138000,ok\n123,short\n13700137000,x,y\n", encoding="utf-8")
    code, _, err = run(capsys, "leads", "import", str(bad), "--campaign", "spring-loans", *db)
    assert code == 2 and "line 3, field 'number'" in err and "line 4, field 'row'" in err
    code, _, err = run(capsys, "dnc", "import", str(bad), *db)
    assert code == 2 and "reason" in err
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "x"\n[caps]\nmonthly_calls = -1\n', encoding="utf-8")
    code, _, err = run(capsys, "policy", "validate", str(policy))
    assert code == 2 and "caps.monthly_calls" in err
    code, _, err = run(
        capsys,
        "check",
        "13800138000",
        "--campaign",
        "spring-loans",
        "--db",
        url,
        "--policy",
        str(policy),
    )
    assert code == 2 and "caps.monthly_calls" in err
    code, _, err = run(capsys, "campaign", "show", "ghost", *db)
    assert code == 2 and "ghost" in err
    assert db_state(url) == before


def test_unreachable_database_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "campaign", "list", "--db", "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    assert code == 3 and "service unavailable" in err


def test_campaign_and_policy_views(db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "campaign", "list", *db)
    assert code == 0 and "spring-loans" in out
    code, out, _ = run(capsys, "campaign", "show", "spring-loans", "--json", *db)
    assert code == 0 and json.loads(out)["leads"] == {"new": 5}
    code, out, _ = run(capsys, "leads", "list", "--campaign", "spring-loans", *db)
    assert code == 0 and "138****8000" in out and not FULL_NUMBER.search(out)
    code, out, _ = run(capsys, "policy", "show", "--json", *db)
    assert code == 0 and json.loads(out)["version"] == "sample-2026.11"


def test_sample_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sample-run")
    assert code == 0
    assert "ALLOWED" in out and "blacklisted" in out and "data_recalled" in out
    assert "monthly_cap" in out and "caller_id_must_be_dialled_number" in out
    assert not FULL_NUMBER.search(out)
    code, out, _ = run(capsys, "sample-run", "--json")
    cases = json.loads(out)
    assert code == 0 and len(cases) == 9
    assert [c["allowed"] for c in cases].count(True) == 2


def test_redis_ledger_history_and_sync(
    db: list[str], capsys: pytest.CaptureFixture[str], redis_target: Any
) -> None:
    hot = ["--redis", redis_target.url, "--redis-prefix", redis_target.prefix]
    base = ["--campaign", "spring-loans", "--at", AT, *db]
    assert run(capsys, "check", "13800138000", "--reserve", "r1", *base, *hot)[0] == 0
    code, out, _ = run(capsys, "ledger", "history", "13800138000", *db, *hot)
    assert code == 0 and "1 contact events" in out and "r1" in out
    assert not FULL_NUMBER.search(out)
    code, out, _ = run(capsys, "ledger", "history", "13800138000", *db)
    assert code == 0 and "0 contact events" in out  # SQL has not seen it yet
    code, out, _ = run(capsys, "ledger", "sync", *db, *hot)
    assert code == 0 and "copied" in out
    code, out, _ = run(capsys, "ledger", "sync", *db, *hot)
    assert code == 0 and "nothing new" in out
    code, out, _ = run(capsys, "ledger", "history", "13800138000", "--json", *db)
    assert [e["attempt_id"] for e in json.loads(out)["history"]] == ["r1"]
    code, _, err = run(capsys, "ledger", "sync", *db)
    assert code == 2 and "--redis" in err
