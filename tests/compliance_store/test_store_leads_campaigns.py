"""Campaign registry and lead lists: validation, merge on import, atomic claiming."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from store_helpers import SHANGHAI, local, snapshot

from compliance.campaigns import (
    CampaignError,
    CampaignState,
    CampaignStore,
    UnknownCampaign,
    load_campaign_file,
    parse_campaign_spec,
)
from compliance.cli import sample_dir
from compliance.leads import LeadStatus, LeadStore
from compliance.lists import ImportFailed
from compliance.tables import open_engine

SPEC = {"name": "c1", "script": "Hello", "products": ["loan", "card"], "caller_id": "010-58001234"}
NOW = local(2026, 11, 3, 10, 0)


async def test_campaign_registry(engine: AsyncEngine) -> None:
    store = CampaignStore(engine)
    created = await store.create(parse_campaign_spec(SPEC))
    assert created.state == CampaignState.CREATED and created.has_script
    got = await store.get("c1")
    assert got.spec == created.spec and got.caller_id == "01058001234"
    with pytest.raises(CampaignError, match="already exists"):
        await store.create(parse_campaign_spec(SPEC))
    with pytest.raises(UnknownCampaign, match="'nope'"):
        await store.get("nope")
    assert (await store.set_state("c1", CampaignState.RUNNING)).state == CampaignState.RUNNING
    await store.create(parse_campaign_spec({**SPEC, "name": "c2", "script": "  "}))
    before = await snapshot(engine)
    with pytest.raises(CampaignError, match="no script"):
        await store.set_state("c2", CampaignState.RUNNING)
    assert await snapshot(engine) == before
    assert [c.name for c in await store.list_all()] == ["c1", "c2"]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"ring_timeout": 10}, "ring_timeout"),
        ({"products": []}, "products"),
        ({"caller_id": "12x"}, "caller_id"),
        ({"pacing": {"method": "telepathy"}}, "pacing.method"),
        ({"retry": {"no_answer": {"max_tries": 3}}}, "retry.no_answer.delay_s"),
        ({"hours": {"windows": ["12:00-09:00"]}}, "hours.windows"),
        ({"colour": "red"}, "colour"),
        ({"name": "bad name!"}, "name"),
    ],
)
def test_campaign_validation_names_the_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(CampaignError) as err:
        parse_campaign_spec({**SPEC, **change})
    assert err.value.key == key
    assert key.split(".")[0] in str(err.value)


def test_sample_campaign_file_loads() -> None:
    spec = load_campaign_file(sample_dir() / "campaign.toml")
    assert spec.name == "spring-loans" and spec.script.strip() and spec.ring_timeout >= 15


LEADS_CSV = (
    "number,name,segment,product,assigned_at,dialled_number\n"
    "13800138000,,,loan,2026-10-20T09:00,\n"
    "13900139000,Li,default,card,2026-10-20T09:00+08:00,\n"
    "+86 138-0013-8000,Wang,,card,2026-10-01T09:00,010-58005678\n"
    "13700137000,Zhang,,,,\n"
)


async def _campaign(engine: AsyncEngine) -> None:
    await CampaignStore(engine).create(parse_campaign_spec(SPEC))


async def test_lead_import_merges_duplicates(engine: AsyncEngine) -> None:
    await _campaign(engine)
    leads = LeadStore(engine)
    report = await leads.import_text(LEADS_CSV, "leads.csv", "c1", tz=SHANGHAI, now=NOW)
    assert (report.rows, report.created, report.merged_in_file, report.merged_existing) == (
        4,
        3,
        1,
        0,
    )
    lead = await leads.find("c1", "13800138000")
    assert lead is not None
    assert (lead.name, lead.product, lead.dialled_number) == ("Wang", "loan", "01058005678")
    assert lead.assigned_at == local(2026, 10, 1, 9, 0)  # the earliest assignment wins
    assert lead.segment == "default" and lead.status == LeadStatus.NEW
    zhang = await leads.find("c1", "13700137000")
    assert zhang is not None and zhang.assigned_at == NOW  # no time given: the import time
    again = await leads.import_text(
        "number,name\n13700137000,Zhang Wei\n13600136000,Liu\n", "more.csv", "c1", tz=SHANGHAI
    )
    assert (again.created, again.merged_existing) == (1, 1)
    assert len(await leads.list_leads("c1")) == 4


async def test_bad_lead_file_reports_every_row_and_imports_nothing(engine: AsyncEngine) -> None:
    await _campaign(engine)
    leads = LeadStore(engine)
    await leads.import_text("number\n13900139000\n", "ok.csv", "c1", tz=SHANGHAI)
    before = await snapshot(engine)
    bad = (
        "number,name,assigned_at,dialled_number\n"
        "13800138000,ok,,\n"
        "1380013800,short,,\n"
        "13700137000,x,yesterday,\n"
        "13600136000,y,,4x\n"
        "13500135000,z,,,extra\n"
    )
    with pytest.raises(ImportFailed) as err:
        await leads.import_text(bad, "bad.csv", "c1", tz=SHANGHAI)
    assert [(p.line, p.field) for p in err.value.problems] == [
        (3, "number"),
        (4, "assigned_at"),
        (5, "dialled_number"),
        (6, "row"),
    ]
    assert "bad.csv" in str(err.value) and "1380013800" not in str(err.value)
    assert await snapshot(engine) == before


async def test_lead_import_into_unknown_campaign_changes_nothing(engine: AsyncEngine) -> None:
    before = await snapshot(engine)
    with pytest.raises(UnknownCampaign):
        await LeadStore(engine).import_text(LEADS_CSV, "leads.csv", "ghost", tz=SHANGHAI)
    assert await snapshot(engine) == before


async def test_due_leads_claim_and_update(engine: AsyncEngine) -> None:
    await _campaign(engine)
    leads = LeadStore(engine)
    await leads.import_text(LEADS_CSV, "leads.csv", "c1", tz=SHANGHAI, now=NOW)
    first = await leads.due_leads("c1", NOW, 2, claimer="d1")
    assert len(first) == 2 and all(x.status == LeadStatus.IN_PROGRESS for x in first)
    rest = await leads.due_leads("c1", NOW, 10, claimer="d2")
    assert len(rest) == 1 and rest[0].id not in {x.id for x in first}
    assert await leads.due_leads("c1", NOW, 10) == []
    later = NOW + timedelta(hours=1)
    updated = await leads.update_lead(
        first[0].id,
        status=LeadStatus.RETRY,
        next_attempt_at=later,
        reasons=["no_answer"],
        count_attempt=True,
    )
    assert (updated.attempts, updated.reasons, updated.claimed_by) == (1, ("no_answer",), "")
    await leads.update_lead(first[1].id, status=LeadStatus.DONE)
    assert await leads.due_leads("c1", NOW, 10) == []
    assert [x.id for x in await leads.due_leads("c1", later, 10)] == [first[0].id]
    assert await leads.release_stale("c1", timedelta(minutes=5), now=NOW + timedelta(hours=2)) == 2
    with pytest.raises(ValueError, match="in_progress"):
        await leads.update_lead(first[0].id, status=LeadStatus.IN_PROGRESS)


async def test_two_dialers_never_claim_the_same_lead(
    engine: AsyncEngine, sql_target: tuple[str, str | None]
) -> None:
    await _campaign(engine)
    rows = "".join(f"1380000{i:04d}\n" for i in range(60))
    await LeadStore(engine).import_text("number\n" + rows, "many.csv", "c1", tz=SHANGHAI)
    url, schema = sql_target
    other = await open_engine(url, schema=schema, create=False)  # a second dialer process
    try:
        stores = [LeadStore(engine), LeadStore(other)]
        batches = await asyncio.gather(
            *(stores[i % 2].due_leads("c1", NOW, 7, claimer=f"d{i}") for i in range(12))
        )
    finally:
        await other.dispose()
    ids = [lead.id for batch in batches for lead in batch]
    assert len(ids) == len(set(ids)) == 60


async def test_release_stale_only_hands_back_the_claimers_own_leads(engine: AsyncEngine) -> None:
    from dialer.adapters import LeadAdapter

    await _campaign(engine)
    leads = LeadStore(engine)
    rows = "".join(f"1380000{i:04d}\n" for i in range(4))
    await leads.import_text("number\n" + rows, "four.csv", "c1", tz=SHANGHAI)
    mine = await leads.due_leads("c1", NOW, 2, claimer="dialer-a")
    theirs = await leads.due_leads("c1", NOW, 2, claimer="dialer-b")
    assert len(mine) == len(theirs) == 2
    # dialer-a restarts: its start-up recovery releases only what dialer-a held.
    adapter_a = LeadAdapter(leads, claimer="dialer-a")
    assert await adapter_a.release_claims("c1", NOW + timedelta(seconds=1)) == 2
    after = {lead.id: lead for lead in await leads.list_leads("c1")}
    for lead in mine:
        assert (after[lead.id].status, after[lead.id].claimed_by) == (LeadStatus.RETRY, "")
    for lead in theirs:
        assert (after[lead.id].status, after[lead.id].claimed_by) == (
            LeadStatus.IN_PROGRESS,
            "dialer-b",
        )
    # The claimer filter is still bounded by age, and None means every claimer.
    assert await leads.release_stale("c1", timedelta(hours=1), now=NOW, claimer="dialer-b") == 0
    assert await leads.release_stale("c1", timedelta(0), now=NOW, claimer="dialer-c") == 0
    assert await leads.release_stale("c1", timedelta(0), now=NOW + timedelta(seconds=1)) == 2
    assert await leads.counts("c1") == {"retry": 4}
