"""`dialer desk ...` and `dialer agi ...` through the real console entry point."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agi_scripts.desk_store import DeskStore, RatedCall
from agi_scripts.testing import FakeAsterisk, call_env
from dialer.cli import main

DATA = Path(__file__).parent / "data"
DESK = Path(__file__).parents[2] / "asterisk_conf" / "desk.toml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(sqlite_url: str) -> list[str]:
    return ["--db", sqlite_url, "--desk-config", str(DESK)]


def test_grant_lifecycle(capsys, db) -> None:
    code, _, err = run(
        capsys,
        "desk",
        "grant",
        "add",
        *db,
        "--extension",
        "230",
        "--requester",
        "alice",
        "--approver",
        "bob",
        "--days",
        "30",
    )
    assert code == 2 and "needs 2 distinct approvers" in err
    code, _, err = run(
        capsys,
        "desk",
        "grant",
        "add",
        *db,
        "--extension",
        "230",
        "--requester",
        "alice",
        "--approver",
        "bob",
        "--approver",
        "carol",
    )
    assert code == 2 and "exactly one of --days N or --until" in err
    code, out, _ = run(
        capsys,
        "desk",
        "grant",
        "add",
        *db,
        "--extension",
        "230",
        "--requester",
        "alice",
        "--approver",
        "bob",
        "--approver",
        "carol",
        "--days",
        "30",
        "--reason",
        "Guangzhou project",
    )
    assert code == 0 and re.match(r"#1 ext=230 active .* requester=alice approvers=bob,carol", out)
    code, out, _ = run(capsys, "desk", "check", *db, "230", "02088886666")
    assert code == 0 and "decision=ALLOW" in out and "dial=179*********6666" in out
    assert "02088886666" not in out
    code, out, _ = run(capsys, "desk", "grant", "list", *db)
    assert code == 0 and out.startswith("#1 ext=230 active")
    code, out, _ = run(capsys, "desk", "grant", "revoke", *db, "1", "--by", "hr-wang")
    assert code == 0 and "revoked_by=hr-wang" in out
    code, out, _ = run(capsys, "desk", "grant", "list", *db)
    assert "no grants active" in out
    code, out, _ = run(capsys, "desk", "grant", "list", *db, "--all")
    assert out.startswith("#1 ext=230 revoked")
    code, _, err = run(capsys, "desk", "grant", "revoke", *db, "1", "--by", "hr-wang")
    assert code == 2 and "already revoked" in err
    code, out, _ = run(capsys, "desk", "check", *db, "230", "02088886666")
    assert code == 1 and "reason=long_distance_not_permitted" in out


def test_bill_is_itemized_and_masked(capsys, db, sqlite_url) -> None:
    async def seed() -> None:
        store = await DeskStore.open(sqlite_url)
        at = datetime(2026, 11, 3, 1, 15, tzinfo=UTC)
        for i, (ext, key, kind, sec, fen) in enumerate(
            [
                ("201", "02088886666", "domestic_long_distance", 125, 90),
                ("201", "13812345678", "mobile", 60, 15),
                ("230", "01088886666", "local", 30, 10),
            ]
        ):
            await store.record_call(
                RatedCall(f"c{i}", ext, "2026-11", at, key, kind, key, sec, fen)
            )
        await store.close()

    asyncio.run(seed())
    code, out, _ = run(capsys, "desk", "bill", *db, "--month", "2026-11")
    assert code == 0
    assert "Extension 201 (executive)" in out and "Extension 230 (local)" in out
    assert "138****5678" in out and "13812345678" not in out and "02088886666" not in out
    assert re.search(r"total\s+2 calls\s+1\.05", out)
    assert "2026-11-03 09:15:00" in out  # Shanghai time
    code, out, _ = run(capsys, "desk", "bill", *db, "--month", "2026-11", "--extension", "230")
    assert "Extension 201" not in out and "0.10" in out
    code, _, err = run(capsys, "desk", "bill", *db, "--month", "2026-13")
    assert code == 2 and "expected YYYY-MM" in err


def test_bad_desk_file_is_reported_with_its_line(capsys, tmp_path, sqlite_url) -> None:
    bad = tmp_path / "desk.toml"
    bad.write_text('[extensions]\n"201" = "boss"\n')
    code, _, err = run(
        capsys, "desk", "check", "--db", sqlite_url, "--desk-config", str(bad), "201", "88886666"
    )
    assert code == 2 and f"{bad}:2: [extensions] '201'" in err


def test_agi_routes(capsys) -> None:
    code, out, _ = run(capsys, "agi", "routes")
    assert code == 0 and "desk_check" in out and "desk-check" in out


async def test_agi_serve_standalone(sqlite_url, tmp_path) -> None:
    env = dict(os.environ, DIALER_DB_URL=sqlite_url, DIALER_DESK_CONFIG=str(DESK))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dialer.cli",
        "agi",
        "serve",
        "--port",
        "0",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        async with asyncio.timeout(20):
            assert proc.stdout is not None
            line = (await proc.stdout.readline()).decode()
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        block = (DATA / "fastagi_desk-check_5550001_env.raw").read_bytes()
        result = await FakeAsterisk("127.0.0.1", port).run(
            call_env(block, args=["02088886666"], callerid="201")
        )
        assert result.set_vars["DESK_DIAL"] == "1790902088886666"
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
