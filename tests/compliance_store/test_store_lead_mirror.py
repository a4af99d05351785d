"""The Redis lead mirror: the gate reads leads without SQL, and never a lead older than SQL's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import update
from store_helpers import SHANGHAI, local

from compliance.campaigns import parse_campaign_spec
from compliance.gate import ComplianceStores, open_compliance
from compliance.leads import LEAD_UNKNOWN, GateLead, LeadStore
from compliance.model import CallRequest, ReasonCode
from compliance.numbers import mask
from compliance.policy import Policy
from compliance.tables import leads as leads_table

AT = local(2026, 11, 3, 10, 30)
SPEC = {"name": "c1", "script": "Hello", "products": ["loan", "card"], "caller_id": "010-58001234"}
RECENT = "2026-10-20T09:00"
RECALLED = "2025-12-01T09:00"  # older than the recall period at AT: DATA_RECALLED
LEADS = (
    "number,segment,product,assigned_at,dialled_number\n"
    f"13800138000,default,card,{RECENT},\n"
    f"13500135000,default,loan,{RECALLED},\n"
    f"13600136000,default,loan,{RECENT},010-58005678\n"
    f"13400134000,vip,loan,{RECENT},\n"
)


@pytest.fixture
async def stores(
    redis_target: Any, sqlite_url: str, policy: Policy
) -> AsyncIterator[ComplianceStores]:
    opened = await open_compliance(
        sqlite_url, policy, redis_url=redis_target.url, redis_prefix=redis_target.prefix
    )
    await opened.campaigns.create(parse_campaign_spec(SPEC))
    await opened.leads.import_text(LEADS, "leads.csv", "c1", tz=SHANGHAI)
    yield opened
    await opened.close()


class SqlLeadReads:
    """Counts the gate's SQL reads of leads (and can forbid them)."""

    def __init__(self, stores: ComplianceStores, *, forbid: bool) -> None:
        gate: Any = stores.gate
        self.count = 0
        original = gate._lead

        async def counting(campaign: str, key: str) -> Any:
            self.count += 1
            if forbid:
                raise AssertionError(f"SQL read of the lead for {mask(key)}")
            return await original(campaign, key)

        gate._lead = counting


def _mirror(stores: ComplianceStores) -> Any:
    assert stores.leads.mirror is not None
    return stores.leads.mirror


async def test_reserve_reads_the_lead_from_the_mirror_not_sql(stores: ComplianceStores) -> None:
    SqlLeadReads(stores, forbid=True)
    gate = stores.gate
    recalled = await gate.check_and_reserve("13500135000", "c1", None, AT, attempt_id="m1")
    assert ReasonCode.DATA_RECALLED in recalled.codes
    vip = await gate.check_and_reserve("13400134000", "c1", None, AT, attempt_id="m2")
    assert ReasonCode.UNKNOWN_SEGMENT in vip.codes
    callback = await gate.check_and_reserve(
        "13600136000", "c1", None, AT, is_callback=True, attempt_id="m3"
    )
    assert callback.allowed, callback.reasons  # presents the lead's dialled number (A.5)
    allowed = await gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="m4")
    assert allowed.allowed, allowed.reasons
    [event] = await stores.ledger.history("13800138000")
    assert event.product == "card"  # the lead's product
    no_lead = await gate.check_and_reserve("13700137000", "c1", None, AT, attempt_id="m5")
    assert no_lead.allowed, no_lead.reasons


async def test_mirror_answers_what_sql_answers(stores: ComplianceStores) -> None:
    """Every lead field the gate uses, as the mirror holds it, equals the SQL read."""
    gate: Any = stores.gate
    for number in ("13800138000", "13500135000", "13600136000", "13400134000", "13700137000"):
        key = gate._key(number)
        from_sql = await gate._lead("c1", key)
        mirrored = await _mirror(stores).get("c1", key)
        if from_sql is None:
            assert mirrored is None, mask(number)
            continue
        assert isinstance(mirrored, GateLead), mask(number)
        got = (mirrored.segment, mirrored.product, mirrored.assigned_at, mirrored.dialled_number)
        assert got == (
            from_sql.segment,
            from_sql.product,
            from_sql.assigned_at,
            from_sql.dialled_number,
        ), mask(number)


async def test_a_lead_imported_or_merged_through_the_store_is_seen_by_the_next_check(
    stores: ComplianceStores,
) -> None:
    SqlLeadReads(stores, forbid=True)
    gate = stores.gate
    first = await gate.check_and_reserve("13300133000", "c1", None, AT, attempt_id="n1")
    assert first.allowed, first.reasons  # no lead yet
    # a new lead, assigned long ago: refused at once
    await stores.leads.import_text(
        f"number,assigned_at\n13200132000,{RECALLED}\n", "new.csv", "c1", tz=SHANGHAI
    )
    new = await gate.check_and_reserve("13200132000", "c1", None, AT, attempt_id="n2")
    assert ReasonCode.DATA_RECALLED in new.codes
    # merged into an existing lead: the segment (default -> vip) and the earlier assignment
    await stores.leads.import_text(
        f"number,segment,assigned_at\n13800138000,vip,{RECALLED}\n", "merge.csv", "c1", tz=SHANGHAI
    )
    merged = await gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="n3")
    assert ReasonCode.UNKNOWN_SEGMENT in merged.codes
    assert ReasonCode.DATA_RECALLED in merged.codes


async def test_without_a_built_mirror_the_gate_reads_sql(stores: ComplianceStores) -> None:
    reads = SqlLeadReads(stores, forbid=False)
    mirror = _mirror(stores)
    assert stores.redis is not None
    await stores.redis.delete(mirror.lookup("c1")[0])  # no generation: as after a Redis loss
    assert await mirror.get("c1", "13500135000") is LEAD_UNKNOWN
    recalled = await stores.gate.check_and_reserve("13500135000", "c1", None, AT, attempt_id="s1")
    assert ReasonCode.DATA_RECALLED in recalled.codes
    assert reads.count == 1
    assert await stores.leads.rebuild_mirror()
    again = await stores.gate.check_and_reserve("13500135000", "c1", None, AT, attempt_id="s2")
    assert ReasonCode.DATA_RECALLED in again.codes
    assert reads.count == 1  # the mirror answers again


async def test_a_lead_being_written_is_read_from_sql(stores: ComplianceStores) -> None:
    """Between begin (before the commit) and finish, the mirror does not vouch for the lead."""
    reads = SqlLeadReads(stores, forbid=False)
    mirror = _mirror(stores)
    token = await mirror.begin("c1", ["13800138000"])
    assert await mirror.get("c1", "13800138000") is LEAD_UNKNOWN
    # committed meanwhile, not through the store: only SQL has it
    async with stores.engine.begin() as conn:
        await conn.execute(
            update(leads_table)
            .where(leads_table.c.number_key == "13800138000")
            .values(assigned_at=local(2025, 12, 1, 9))
        )
    decision = await stores.gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="w1")
    assert ReasonCode.DATA_RECALLED in decision.codes
    assert reads.count == 1
    # a finish without the committed entry (a failed write) leaves the lead to SQL
    await mirror.finish("c1", token, ["13800138000"], {})
    assert await mirror.get("c1", "13800138000") is LEAD_UNKNOWN
    again = await stores.gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="w2")
    assert ReasonCode.DATA_RECALLED in again.codes
    assert reads.count == 2


async def test_two_writers_on_one_lead_leave_it_to_sql(stores: ComplianceStores) -> None:
    mirror = _mirror(stores)
    entry = b'["default","loan","2026-10-20T01:00:00+00:00",null]'
    first = await mirror.begin("c1", ["13800138000"])
    second = await mirror.begin("c1", ["13800138000"])
    await mirror.finish("c1", second, ["13800138000"], {"13800138000": entry})
    assert isinstance(await mirror.get("c1", "13800138000"), GateLead)
    # the first writer committed after the second: its values may be newer than the entry
    await mirror.finish("c1", first, ["13800138000"], {"13800138000": entry})
    assert await mirror.get("c1", "13800138000") is LEAD_UNKNOWN


async def test_a_failed_import_leaves_its_leads_to_sql(
    stores: ComplianceStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> tuple[int, int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(LeadStore, "_write_rows", broken)
    with pytest.raises(RuntimeError):
        await stores.leads.import_text(
            f"number,assigned_at\n13800138000,{RECALLED}\n", "x.csv", "c1", tz=SHANGHAI
        )
    assert await _mirror(stores).get("c1", "13800138000") is LEAD_UNKNOWN
    monkeypatch.undo()
    decision = await stores.gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="f1")
    assert decision.allowed, decision.reasons  # SQL still has the recent assignment


async def test_rebuild_does_not_switch_while_a_write_is_in_flight(
    stores: ComplianceStores,
) -> None:
    mirror = _mirror(stores)
    token = await mirror.begin("c1", ["13800138000"])
    # written around the store: only a rebuild can bring it in
    async with stores.engine.begin() as conn:
        await conn.execute(
            update(leads_table)
            .where(leads_table.c.number_key == "13500135000")
            .values(assigned_at=local(2026, 10, 20, 9))
        )
    assert not await stores.leads.rebuild_mirror()
    assert (await mirror.get("c1", "13500135000")).assigned_at == local(2025, 12, 1, 9)
    await mirror.finish("c1", token, ["13800138000"], {})
    assert await stores.leads.rebuild_mirror()
    assert (await mirror.get("c1", "13500135000")).assigned_at == local(2026, 10, 20, 9)
    assert isinstance(await mirror.get("c1", "13800138000"), GateLead)  # rebuilt from SQL
    decision = await stores.gate.check_and_reserve("13500135000", "c1", None, AT, attempt_id="r1")
    assert decision.allowed, decision.reasons


async def test_request_for_and_reserve_build_the_same_request(stores: ComplianceStores) -> None:
    """The SQL path (request_for) and the mirror path decide on the same request."""
    seen: list[CallRequest] = []
    ledger: Any = stores.ledger
    original = ledger.reserve_listed

    async def spy(request: CallRequest, **kwargs: Any) -> Any:
        seen.append(request)
        return await original(request, **kwargs)

    ledger.reserve_listed = spy
    for i, number in enumerate(("13800138000", "13500135000", "13600136000", "13700137000")):
        expected = await stores.gate.request_for(number, "c1", None, AT, is_callback=True)
        await stores.gate.check_and_reserve(
            number, "c1", None, AT, is_callback=True, attempt_id=f"q{i}"
        )
        assert seen[-1] == expected, mask(number)
