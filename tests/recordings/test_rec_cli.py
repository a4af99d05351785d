"""The CLI end to end on SQLite: ingest, search, complaint flow, export, verify, users, audit."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from rec_helpers import NUMBER, SECRET, wav_bytes

from dialer.cli import EXIT_BAD_INPUT, UserError
from recordings.cli import register

pytestmark = pytest.mark.timeout(60)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse and run like ``dialer.cli.main`` does (this package's commands only)."""
    parser = argparse.ArgumentParser(prog="dialer")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        code = int(asyncio.run(args.handler(args)))
    except UserError as exc:
        print(f"error: {exc}")
        code = EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def opts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("DIALER_NUMBER_KEY", SECRET)
    return [
        "--db",
        f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3",
        "--store",
        str(tmp_path / "store"),
    ]


def test_cli_complaint_flow_export_and_verify(
    opts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, freq in enumerate((440, 550)):
        f = tmp_path / f"r{i}.wav"
        f.write_bytes(wav_bytes(0.3, freq))
        code, out, _ = run(
            [
                "recordings",
                "ingest",
                f"desk-{i}",
                str(f),
                "--number",
                NUMBER,
                "--started-at",
                "2026-03-02T10:00:00+08:00",
                "--agent",
                "ext201",
                *opts,
            ],
            capsys,
        )
        assert code == 0 and json.loads(out)["number"] == "138****5678"
    code, out, _ = run(
        ["complaint", "register", NUMBER, "--channel", "visit", "--text", "rude", *opts], capsys
    )
    assert code == 0, out
    cid = json.loads(out)["id"]
    code, out, _ = run(
        ["recordings", "search", "--complaint", str(cid), "--reason", "case", *opts], capsys
    )
    assert code == 0 and len(out.splitlines()) == 2 and NUMBER not in out
    code, out, _ = run(
        ["recordings", "search", "--agent", "x' OR 1=1", "--reason", "r", *opts], capsys
    )
    assert code == EXIT_BAD_INPUT and "agent" in out
    code, out, _ = run(
        ["complaint", "judge", str(cid), "--not-at-fault", "--reply", "no fault found", *opts],
        capsys,
    )
    assert code == 0
    bundle = tmp_path / "case.zip"
    code, out, _ = run(
        ["recordings", "export", str(cid), "--out", str(bundle), "--reason", "case", *opts], capsys
    )
    assert code == 0 and bundle.exists()
    code, out, _ = run(["recordings", "verify-bundle", str(bundle), *opts], capsys)
    assert code == 0 and "0 problem(s)" in out
    code, out, _ = run(["complaint", "close", str(cid), *opts], capsys)
    assert code == 0 and json.loads(out)["status"] == "closed"
    code, out, _ = run(["complaint", "list", *opts], capsys)
    assert code == 0 and "138****5678" in out and NUMBER not in out
    code, out, _ = run(["complaint", "report", *opts], capsys)
    assert code == 0 and "closed 1" in out
    code, out, _ = run(
        ["recordings", "purge", "--dry-run", "--now", "2030-01-01T00:00:00+00:00", *opts], capsys
    )
    assert code == 0 and "2 recording(s) due" in out

    # verify: clean, then one file altered and one missing -> exit 1.
    code, out, _ = run(["recordings", "verify", *opts], capsys)
    assert code == 0 and "2 checked, 0 problem(s)" in out
    files = sorted(p for p in (tmp_path / "store").rglob("*.wav"))
    files[0].chmod(0o644)
    files[0].write_bytes(b"RIFF" + b"\0" * 100)
    files[1].unlink()
    code, out, _ = run(["recordings", "verify", *opts], capsys)
    assert code == 1 and "altered" in out and "missing" in out

    # audit: clean, then an edited entry -> exit 1.
    code, out, _ = run(["audit", "verify", *opts], capsys)
    assert code == 0
    code, out, _ = run(["audit", "show", "--limit", "5", *opts], capsys)
    assert code == 0 and NUMBER not in out
    db = sqlite3.connect(tmp_path / "cli.sqlite3")
    db.execute("DROP TRIGGER access_audit_no_update")  # someone with rights to the file
    db.execute("UPDATE access_audit SET actor = 'nobody' WHERE seq = 2")
    db.commit()
    db.close()
    code, out, _ = run(["audit", "verify", *opts], capsys)
    assert code == 1 and "edited" in out and "seq 2" in out


def test_cli_users_and_tokens(opts: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["user", "add", "carol", "--role", "compliance", *opts], capsys)
    assert code == 0
    code, out, err = run(["user", "token", "carol", "--label", "desk", *opts], capsys)
    token = out.strip()
    assert code == 0 and len(token) >= 43 and "shown once" in err
    code, out, _ = run(["user", "add", "carol", "--role", "agent", *opts], capsys)
    assert code == EXIT_BAD_INPUT and "already exists" in out
    code, out, _ = run(["user", "revoke", "1", *opts], capsys)
    assert code == 0
    code, out, _ = run(["user", "revoke", "1", *opts], capsys)
    assert code == EXIT_BAD_INPUT


def test_cli_needs_the_number_key(
    opts: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DIALER_NUMBER_KEY")
    code, out, _ = run(["audit", "verify", *opts], capsys)
    assert code == EXIT_BAD_INPUT and "DIALER_NUMBER_KEY" in out
