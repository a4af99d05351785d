"""Rule A.5 (art. 35): which caller ID a call to a lead presents, from the lead store up.

A lead that came from the customer's own call (``dialled_number``) presents that
number on every call, including a scheduled callback; a lead without one presents
the campaign's pool number, a scheduled "callback" included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from compliance.campaigns import CampaignStore, parse_campaign_spec
from compliance.leads import LeadStatus, LeadStore
from compliance.tables import open_engine
from dialer.adapters import LeadAdapter
from dialer.runner import presented_caller_id

NOW = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
POOL = "01058001234"
CSV = "number,dialled_number\n13800000001,4008001234\n13800000002,\n"


async def test_caller_id_follows_the_customers_own_call_only(sqlite_url: str) -> None:
    engine = await open_engine(sqlite_url)
    try:
        await CampaignStore(engine).create(
            parse_campaign_spec(
                {"name": "c1", "script": "Hello", "products": ["loan"], "caller_id": POOL}
            )
        )
        store = LeadStore(engine)
        await store.import_text(CSV, "leads.csv", "c1", tz=UTC, now=NOW)
        adapter = LeadAdapter(store, claimer="d1")
        first = {lead.number: lead for lead in await adapter.claim("c1", NOW, 10)}
        theirs, ours = first["13800000001"], first["13800000002"]
        assert theirs.is_callback and theirs.dialled_number == "4008001234"
        assert not ours.is_callback and ours.dialled_number is None
        assert presented_caller_id(theirs, POOL) == "4008001234"
        assert presented_caller_id(ours, POOL) == POOL

        # Both customers hesitate: disposition "callback" schedules a follow-up.
        later = NOW + timedelta(days=2)
        for lead in (theirs, ours):
            await adapter.callback_at(lead, later, now=NOW)
        again = {lead.number: lead for lead in await adapter.claim("c1", later, 10)}
        assert {lead.status for lead in await store.list_leads("c1")} == {LeadStatus.IN_PROGRESS}
        assert presented_caller_id(again["13800000001"], POOL) == "4008001234"
        # A callback after our own call is not a call following theirs: pool number.
        assert not again["13800000002"].is_callback
        assert presented_caller_id(again["13800000002"], POOL) == POOL
    finally:
        await engine.dispose()
