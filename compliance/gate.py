"""The compliance gate: the one call the dialer and the FastAGI ``dialer_check`` make.

``ComplianceGate.check_and_reserve(number, campaign, product, at, ...)`` builds
the ``CallRequest`` (segment and assignment time from the campaign's lead when
there is one, caller ID defaulting to the campaign's, ``campaign_has_script``
from the registry), asks the lists for the number's ``ListStatus`` and hands
both to the ledger, which evaluates and reserves atomically. An unknown
campaign is a refusal (``UNKNOWN_CAMPAIGN``), not an exception: the dialplan
branches on it like on any other reason.

``open_compliance`` wires the SQL stores (and optionally the Redis ledger and
list mirror) from URLs: the composition the CLI, the dialer and the AGI server
share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.campaigns import Campaign, CampaignStore
from compliance.leads import Lead, LeadStore
from compliance.ledger import ContactLedger, utcnow
from compliance.lists import ListStore, RedisListMirror
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    Decision,
    ListStatus,
    Reason,
    ReasonCode,
)
from compliance.numbers import InvalidNumber
from compliance.policy import Policy
from compliance.redis_ledger import RedisLedger
from compliance.sql_ledger import SqlLedger
from compliance.tables import open_engine


class ComplianceGate:
    """Pre-dial gate over a ledger, the lists, the campaign registry and the lead lists."""

    def __init__(
        self,
        policy: Policy,
        ledger: ContactLedger,
        lists: ListStore,
        campaigns: CampaignStore,
        leads: LeadStore | None = None,
    ) -> None:
        if str(ledger.policy.version) != str(policy.version):
            raise ValueError(
                f"ledger evaluates policy {ledger.policy.version}, gate was given {policy.version}"
            )
        self.policy = policy
        self.ledger = ledger
        self.lists = lists
        self.campaigns = campaigns
        self.leads = leads

    async def request_for(
        self,
        number: str,
        campaign: str,
        product: str | None = None,
        at: datetime | None = None,
        *,
        caller_id: str | None = None,
        is_callback: bool = False,
        dialled_number: str | None = None,
    ) -> CallRequest | Decision:
        """The ``CallRequest`` the ledger gets, or a refusal when the campaign is unknown."""
        when = at or utcnow()
        found = await self.campaigns.find(campaign)
        if found is None:
            return self._unknown_campaign(campaign)
        lead = await self._lead(found, number)
        chosen_product = product or (lead.product if lead and lead.product else found.products[0])
        dialled = dialled_number or (lead.dialled_number if lead else None)
        if caller_id is None:
            # A callback presents the number the customer dialled (A.5); the engine checks it.
            caller_id = dialled if is_callback and dialled else found.caller_id
        return CallRequest(
            number=number,
            campaign=campaign,
            product=chosen_product,
            at=when,
            caller_id=caller_id,
            segment=lead.segment if lead and lead.segment else "default",
            is_callback=is_callback,
            dialled_number=dialled,
            assigned_at=lead.assigned_at if lead else None,
            campaign_has_script=found.has_script,
        )

    async def check(
        self,
        number: str,
        campaign: str,
        product: str | None = None,
        at: datetime | None = None,
        *,
        caller_id: str | None = None,
        is_callback: bool = False,
        dialled_number: str | None = None,
    ) -> Decision:
        """Would this call be allowed now? Nothing is reserved (the decision is logged)."""
        request = await self.request_for(
            number,
            campaign,
            product,
            at,
            caller_id=caller_id,
            is_callback=is_callback,
            dialled_number=dialled_number,
        )
        if isinstance(request, Decision):
            return request
        return await self.ledger.check(request, await self._lists(number))

    async def check_and_reserve(
        self,
        number: str,
        campaign: str,
        product: str | None = None,
        at: datetime | None = None,
        caller_id: str | None = None,
        is_callback: bool = False,
        dialled_number: str | None = None,
        *,
        attempt_id: str,
    ) -> Decision:
        """Check and, if allowed, reserve attempt ``attempt_id`` in one atomic step.

        After the dial, report how it ended with ``resolve(attempt_id, outcome)``
        (``AttemptOutcome.CANCELLED`` when it was never originated).
        """
        request = await self.request_for(
            number,
            campaign,
            product,
            at,
            caller_id=caller_id,
            is_callback=is_callback,
            dialled_number=dialled_number,
        )
        if isinstance(request, Decision):
            return request
        return await self.ledger.check_and_reserve(
            request, attempt_id=attempt_id, lists=await self._lists(number)
        )

    async def resolve(self, attempt_id: str, outcome: AttemptOutcome) -> None:
        await self.ledger.resolve(attempt_id, outcome)

    async def record_refusal(
        self,
        number: str,
        campaign: str,
        product: str,
        at: datetime | None = None,
        attempt_id: str = "",
    ) -> None:
        await self.ledger.record_refusal(number, campaign, product, at or utcnow(), attempt_id)

    async def _lists(self, number: str) -> ListStatus:
        return await self.lists.status(number)

    async def _lead(self, campaign: Campaign, number: str) -> Lead | None:
        if self.leads is None:
            return None
        try:
            return await self.leads.find(campaign.name, number)
        except InvalidNumber:
            return None  # the engine refuses it with INVALID_NUMBER

    def _unknown_campaign(self, campaign: str) -> Decision:
        return Decision(
            allowed=False,
            reasons=(
                Reason(
                    code=ReasonCode.UNKNOWN_CAMPAIGN,
                    rule="campaign registry",
                    message=f"campaign {campaign!r} is not registered",
                ),
            ),
            policy_version=str(self.policy.version),
        )


@dataclass
class ComplianceStores:
    """Everything ``open_compliance`` built; ``close()`` releases what it opened."""

    engine: AsyncEngine
    ledger: ContactLedger
    lists: ListStore
    leads: LeadStore
    campaigns: CampaignStore
    gate: ComplianceGate
    redis: aioredis.Redis | None = None

    async def close(self) -> None:
        await self.ledger.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


async def open_compliance(
    db_url: str,
    policy: Policy,
    *,
    schema: str | None = None,
    redis_url: str | None = None,
    redis_prefix: str = "dialer:",
) -> ComplianceStores:
    """SQL stores on ``db_url``; with ``redis_url`` the ledger and a list mirror on Redis.

    With Redis, the list mirror is rebuilt from SQL at start (SQL is the system
    of record; the mirror only serves ``status``).
    """
    engine = await open_engine(db_url, schema=schema)
    client: aioredis.Redis | None = None
    ledger: ContactLedger
    mirror: RedisListMirror | None = None
    if redis_url:
        client = aioredis.Redis.from_url(redis_url, max_connections=64)
        ledger = RedisLedger(client, policy, prefix=redis_prefix + "ledger:")
        mirror = RedisListMirror(client, prefix=redis_prefix + "lists:")
    else:
        ledger = SqlLedger(engine, policy)
    lists = ListStore(engine, plan=policy.numbers, mirror=mirror)
    if mirror is not None:
        await lists.rebuild_mirror()
    leads = LeadStore(engine, plan=policy.numbers, customer_kinds=policy.customer_kinds)
    campaigns = CampaignStore(engine)
    gate = ComplianceGate(policy, ledger, lists, campaigns, leads)
    return ComplianceStores(engine, ledger, lists, leads, campaigns, gate, client)
