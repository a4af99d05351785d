"""``dialer complaint <step>``, ``dialer quality`` and ``dialer audit view`` on SQLite."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rec_helpers import NUMBER, SECRET, wav_bytes

from dialer.cli import EXIT_BAD_INPUT, UserError, build_parser

pytestmark = pytest.mark.timeout(90)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse with the whole ``dialer`` tree and run the handler as ``main`` does."""
    args: argparse.Namespace = build_parser().parse_args(argv)
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
    monkeypatch.delenv("DIALER_POLICY", raising=False)
    return [
        "--db",
        f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3",
        "--store",
        str(tmp_path / "store"),
    ]


def test_cli_case_steps_quality_and_audit_view(
    opts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    started = datetime.now(UTC).replace(microsecond=0).isoformat()
    for i in range(2):
        f = tmp_path / f"r{i}.wav"
        f.write_bytes(wav_bytes(0.3, 400 + 100 * i))
        code, out, _ = run(
            [
                "recordings",
                "ingest",
                f"call-{i}",
                str(f),
                "--number",
                NUMBER,
                "--started-at",
                started,
                "--agent",
                "a1",
                *opts,
            ],
            capsys,
        )
        assert code == 0, out
    code, out, _ = run(
        [
            "complaint",
            "register",
            NUMBER,
            "--channel",
            "call",
            "--text",
            "泄露了我的号码13812345678",
            *opts,
        ],
        capsys,
    )
    cid = str(json.loads(out)["id"])

    # Steps out of order are refused with the reason and exit 2.
    code, out, _ = run(
        ["complaint", "decide", cid, "--at-fault", "--standard", "五.1", "--note", "x", *opts],
        capsys,
    )
    assert code == EXIT_BAD_INPUT and "next step is classified" in out
    steps = [
        ["classify", cid, "--category", "data_leak", "--dispatched-to", "tm-desk"],
        ["evidence", cid, "--recording", "call-0", "--note", "leak at 1:10"],
        ["decide", cid, "--at-fault", "--standard", "五.1", "--note", "number read out"],
        ["penalise", cid, "--penalty", "agent:a1:data_leak", "--penalty", "partner:acme:3"],
        ["remedy", cid, "--cancel-order", "--refund", "50", "--note", "cancelled"],
        ["feedback", cid, "--summary", "agent penalised"],
        ["reply", cid, "--channel", "sms", "--text", "已处理"],
    ]
    for argv in steps:
        code, out, _ = run(["complaint", *argv, *opts], capsys)
        assert code == 0, (argv, out)
        assert NUMBER not in out
    code, out, _ = run(["complaint", "penalise", cid, "--penalty", "boss", *opts], capsys)
    assert code == EXIT_BAD_INPUT
    code, out, err = run(["complaint", "cases", "--open", *opts], capsys)
    assert code == 0 and f"{cid:>6} replied" in out and "0 overdue" in err
    code, out, _ = run(["complaint", "finish", cid, *opts], capsys)
    assert json.loads(out)["status"] == "closed"
    code, out, _ = run(["complaint", "show", cid, *opts], capsys)
    shown = json.loads(out)
    assert [s["step"] for s in shown["steps"]][-1] == "closed" and NUMBER not in out

    # Quality: a review, the monthly score with the complaint penalty, a dispute.
    code, out, _ = run(["quality", "sample", month, "--per-agent", "1", *opts], capsys)
    assert code == 0 and out.startswith("a1")
    code, out, _ = run(
        ["quality", "score", "call-1", "--finding", "attitude:2", "--note", "sighs", *opts], capsys
    )
    assert code == 0, out
    review = json.loads(out)
    assert review["deduction"] == "3.00"
    code, out, _ = run(
        ["quality", "score", "call-1", "--finding", "nope", "--actor", "other", *opts], capsys
    )
    assert code == EXIT_BAD_INPUT and "unknown item" in out
    code, out, _ = run(["quality", "scores", month, "--json", *opts], capsys)
    [a1] = json.loads(out)
    assert a1["agent"] == "a1" and a1["score"] == "95.00" and a1["penalties"] == "2.00"
    rid = str(review["id"])
    code, out, _ = run(
        ["quality", "dispute", rid, "--text", "not rude", "--agent-id", "a1", *opts], capsys
    )
    assert code == 0 and json.loads(out)["dispute"]["status"] == "open"
    run(["quality", "answer", rid, "--text", "heard again", *opts], capsys)
    code, out, _ = run(
        ["quality", "resolve", rid, "--resolution", "upheld", "--note", "stands", *opts], capsys
    )
    assert json.loads(out)["dispute"]["resolution"] == "upheld"
    code, out, _ = run(
        ["quality", "trend", "--agent", "a1", "--month", month, "--months", "2", *opts], capsys
    )
    assert out.splitlines()[-1] == f"{month} 95.00"
    code, out, _ = run(["quality", "scorecard", *opts], capsys)
    assert "data_leak" in out and "complaint case" in out

    # The audit view: filter by action prefix; the chain verifies.
    code, out, err = run(["audit", "view", "--action", "complaint.", *opts], capsys)
    assert code == 0 and "complaint.closed" in out and "complaint.register" in out
    assert "chain: verified" in err and NUMBER not in out
    code, out, _ = run(["audit", "view", "--action", "export", *opts], capsys)
    assert out == ""
