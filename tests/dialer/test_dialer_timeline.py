"""Evidence timeline of an attempt the dialer never logged (a manual call checked by FastAGI).

``dialer_check`` reserves through the ledger with an attempt id of its own and writes
no attempt-log row: the bundle must still show the reservation and the decisions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from compliance.model import AttemptOutcome, CallRequest, ListStatus
from compliance.policy import parse_policy
from compliance.sql_ledger import SqlLedger
from compliance.tables import open_engine
from dialer.attempts import AttemptLog
from dialer.timeline import AttemptCallTimeline

POLICY = parse_policy('version = "tl-1"\n[caller_id]\npool = ["010-58001234"]\n', "test policy")
AT = datetime(2026, 11, 3, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def req(number: str) -> CallRequest:
    return CallRequest(
        number=number, campaign="desk", product="loan", at=AT, caller_id="010-58001234"
    )


async def test_manual_attempt_has_its_ledger_lines_and_decisions(sqlite_url: str) -> None:
    engine = await open_engine(sqlite_url)
    try:
        attempts = AttemptLog(engine)
        await attempts.create_schema()
        ledger = SqlLedger(engine, POLICY)
        allowed = await ledger.check_and_reserve(
            req("13800138000"), attempt_id="agi-1", lists=ListStatus()
        )
        assert allowed.allowed, allowed.reasons
        await ledger.resolve("agi-1", AttemptOutcome.ANSWERED)
        listed = ListStatus(blacklisted=True, blacklist_reason="complaint")
        refused = await ledger.check_and_reserve(
            req("13900139000"), attempt_id="agi-2", lists=listed
        )
        assert not refused.allowed
        source = AttemptCallTimeline(attempts, ledger)
        assert await attempts.get("agi-1") is None

        (line,) = await source.timeline("agi-1")
        assert (line["event"], line["detail"]["outcome"]) == ("ledger_attempt", "answered")
        assert datetime.fromisoformat(line["at"]) == AT
        (decision,) = await source.decisions("agi-1")
        assert (decision["allowed"], decision["reserved"], decision["attempt_id"]) == (
            True,
            True,
            "agi-1",
        )
        assert decision["policy_version"] == "tl-1"

        assert await source.timeline("agi-2") == ()
        (no,) = await source.decisions("agi-2")
        assert no["allowed"] is False
        assert "blacklisted" in [r["code"] for r in no["reasons"]]
        assert await source.decisions("nope") == ()
        assert await source.decisions("") == ()
        assert datetime.fromisoformat(decision["requested_at"]) - AT == timedelta(0)
    finally:
        await engine.dispose()
