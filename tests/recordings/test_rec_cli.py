"""The CLI end to end on SQLite: ingest, search, complaint flow, export, verify, audit."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from rec_helpers import NUMBER, SECRET, wav_bytes

from dialer.cli import EXIT_BAD_INPUT, UserError
from identity.cli import register as register_users
from recordings.cli import register
from tests.conftest import RedisTarget

pytestmark = pytest.mark.timeout(60)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse and run like ``dialer.cli.main`` does (this package's commands only)."""
    parser = argparse.ArgumentParser(prog="dialer")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    register_users(subparsers)
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


def test_cli_needs_the_number_key(
    opts: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DIALER_NUMBER_KEY")
    code, out, _ = run(["audit", "verify", *opts], capsys)
    assert code == EXIT_BAD_INPUT and "DIALER_NUMBER_KEY" in out


def test_cli_complaint_blacklists_under_the_policys_numbering_plan(
    opts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from compliance.campaigns import CampaignStore, parse_campaign_spec
    from compliance.gate import open_compliance
    from compliance.lists import ListStore
    from compliance.model import ReasonCode
    from compliance.numbers import NumberPlan
    from compliance.policy import load_policy

    policy_file = tmp_path / "shanghai.toml"
    policy_file.write_text(
        'version = "sh-1"\n[numbers]\nhome_area = "21"\n[caller_id]\npool = ["021-58001234"]\n',
        "utf-8",
    )
    local = "62345678"  # a Shanghai landline written without its area code
    code, out, _ = run(
        [
            "complaint",
            "register",
            local,
            "--channel",
            "visit",
            "--text",
            "rude",
            "--policy",
            str(policy_file),
            *opts,
        ],
        capsys,
    )
    assert code == 0, out
    assert local not in out
    policy = load_policy(policy_file)
    db_url = opts[1]

    async def gate_view() -> None:
        stores = await open_compliance(db_url, policy)
        try:
            assert (await stores.lists.status(local)).blacklisted
            assert (await stores.lists.status("021-62345678")).blacklisted
            # The default plan (home area 010) would have keyed another number.
            other = ListStore(stores.engine, plan=NumberPlan())
            assert not (await other.status(local)).blacklisted
            await CampaignStore(stores.engine).create(
                parse_campaign_spec(
                    {
                        "name": "c1",
                        "script": "Hi",
                        "products": ["loan"],
                        "caller_id": "021-58001234",
                    }
                )
            )
            at = datetime(2026, 11, 3, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
            decision = await stores.gate.check(local, "c1", "loan", at)
            assert not decision.allowed
            assert ReasonCode.BLACKLISTED in decision.codes
        finally:
            await stores.close()

    asyncio.run(gate_view())


def test_cli_reports_a_bad_policy_file(
    opts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "b"\n[numbers]\nhome_area = "0x"\n', "utf-8")
    code, out, _ = run(["complaint", "list", "--policy", str(bad), *opts], capsys)
    assert code == EXIT_BAD_INPUT and "numbers.home_area" in out and "bad.toml" in out


def test_cli_complaint_reaches_the_redis_list_mirror(
    opts: list[str],
    redis_target: RedisTarget,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import redis.asyncio as aioredis

    from compliance.lists import RedisListMirror
    from compliance.policy import default_policy

    monkeypatch.setenv("DIALER_REDIS_URL", redis_target.url)
    monkeypatch.setenv("DIALER_REDIS_PREFIX", redis_target.prefix)
    code, out, _ = run(
        ["complaint", "register", NUMBER, "--channel", "visit", "--text", "rude", *opts], capsys
    )
    assert code == 0, out

    async def mirrored() -> bool:
        client = aioredis.Redis.from_url(redis_target.url)
        try:
            mirror = RedisListMirror(client, prefix=redis_target.prefix + "lists:")
            key = default_policy().numbers.parse(NUMBER).key
            return (await mirror.status(key)).blacklisted
        finally:
            await client.aclose()

    assert asyncio.run(mirrored())


def test_cli_audit_anchor_and_verify_against_it(
    opts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        code, out, _ = run(["user", "add", name, "--role", "agent", *opts[:2]], capsys)
        assert code == 0, out
    anchors = tmp_path / "anchors.log"
    code, out, _ = run(["audit", "anchor", "--to", f"file:{anchors}", *opts], capsys)
    assert code == 0 and "anchored seq 2" in out
    assert anchors.stat().st_mode & 0o777 == 0o600
    code, out, _ = run(["audit", "public-key", *opts], capsys)
    assert code == 0 and out.startswith("-----BEGIN PUBLIC KEY-----")
    public = tmp_path / "audit.pub"
    public.write_text(out)
    verify = ["audit", "verify", "--anchor", str(anchors), "--public-key", str(public), *opts]
    code, out, _ = run(verify, capsys)
    assert code == 0 and "1 signed anchor(s) checked, the newest at seq 2" in out, out

    # Someone with the file drops the guards, cuts the last entry and rolls the head back.
    db = sqlite3.connect(tmp_path / "cli.sqlite3")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DELETE FROM access_audit WHERE seq = 2")
    db.execute(
        "UPDATE access_audit_head SET seq = 1, hash = (SELECT hash FROM access_audit WHERE seq = 1)"
    )
    db.commit()
    db.close()
    code, out, _ = run(["audit", "verify", *opts], capsys)
    assert code == 0 and "cannot be detected" in out
    code, out, _ = run(verify, capsys)
    assert code == 1 and "anchor   seq 2: anchored at" in out and "dropped" in out

    # An anchor file that cannot be read, or a key that is not one: exit 2, no traceback.
    code, out, _ = run(["audit", "verify", "--anchor", str(tmp_path / "nope"), *opts], capsys)
    assert code == EXIT_BAD_INPUT and "anchor file" in out
    code, out, _ = run(["audit", "verify", "--public-key", str(anchors), *opts], capsys)
    assert code == EXIT_BAD_INPUT and "not a PEM public key" in out
    code, out, _ = run(["audit", "anchor", "--to", "syslog:host:port", *opts], capsys)
    assert code == EXIT_BAD_INPUT and "syslog:HOST:PORT" in out


def test_cli_audit_keygen_key_signs_anchors(
    opts: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = tmp_path / "signing.pem"
    code, out, _ = run(["audit", "keygen", str(key)], capsys)
    assert code == 0 and key.stat().st_mode & 0o777 == 0o600
    code, out, _ = run(["audit", "keygen", str(key)], capsys)
    assert code == EXIT_BAD_INPUT and "refusing to overwrite" in out
    monkeypatch.setenv("DIALER_SIGNING_KEY_FILE", str(key))
    anchors = tmp_path / "anchors.log"
    code, out, _ = run(["audit", "anchor", "--to", str(anchors), *opts], capsys)
    assert code == 0
    verify = ["audit", "verify", "--anchor", str(anchors), "--public-key", f"{key}.pub"]
    code, out, _ = run([*verify, *opts], capsys)
    assert code == 0, out
    monkeypatch.delenv("DIALER_SIGNING_KEY_FILE")
    code, out, _ = run(["audit", "verify", "--anchor", str(anchors), *opts], capsys)
    assert code == 1 and "not the given public key" in out
