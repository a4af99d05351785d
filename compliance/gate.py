"""The compliance gate: the one call the dialer and the FastAGI ``dialer_check`` make.

``ComplianceGate.check_and_reserve(number, campaign, product, at, ...)`` builds
the ``CallRequest`` (segment and assignment time from the campaign's lead when
there is one, caller ID defaulting to the campaign's, ``campaign_has_script``
from the registry), asks the lists for the number's ``ListStatus`` and hands
both to the ledger, which evaluates and reserves atomically. An unknown
campaign is a refusal (``UNKNOWN_CAMPAIGN``), not an exception: the dialplan
branches on it like on any other reason; it is written to the decisions log
like every other decision.

Per call the gate costs: no query for the campaign (cached, 1 s TTL, see
``CampaignStore.find_cached``; when the entry expires, concurrent calls share
one lookup), one SQL read for lead and lists together (or, with the Redis list
mirror, the lead from SQL and the list entries inside the Redis ledger's
snapshot script; with the Redis lead mirror too, as ``open_compliance`` builds
it, ``check_and_reserve`` reads no SQL: lead, lists and history come from one
script), then the ledger's transaction or scripts. Neither read has a cache in
front of it: a lead imported a moment ago is seen by the next call (the lead
mirror is written through by ``LeadStore``; an entry it cannot vouch for is read
from SQL, see ``compliance.leads.RedisLeadMirror``). On
SQLite (aiosqlite) a gate built by ``open_compliance`` runs these reads on one
held connection (``hold_read_connection``), not a pool checkout per call.
Every store keys numbers with ``policy.numbers`` (checked at construction).

``open_compliance`` wires the SQL stores (and optionally the Redis ledger and
list mirror) from URLs: the composition the CLI, the dialer and the AGI server
share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Executable, bindparam, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.campaigns import Campaign, CampaignStore
from compliance.database import UtcDateTime
from compliance.leads import GateLead, LeadStore, LeadUnknown, RedisLeadMirror, decode_mirrored
from compliance.ledger import ContactLedger, utcnow
from compliance.lists import ListKind, ListStore, RedisListMirror
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
from compliance.tables import leads as leads_table
from compliance.tables import list_entries, open_engine, reader

# The gate's one SQL read when the lists are not mirrored: the campaign's lead for the
# number (tagged "lead") and the number's list entries (tagged with their list kind).
_LEAD_FIELDS = (
    leads_table.c.segment,
    leads_table.c.product,
    leads_table.c.assigned_at,
    leads_table.c.dialled_number,
)
_LEAD_WHERE = (leads_table.c.campaign == bindparam("campaign")) & (
    leads_table.c.number_key == bindparam("key")
)
_FIND_LEAD_TAGGED = select(literal_column("'lead'").label("tag"), *_LEAD_FIELDS).where(_LEAD_WHERE)
_LISTS_TAGGED = select(
    list_entries.c.list_kind.label("tag"),
    list_entries.c.reason,
    null(),
    null(),
    null(),
).where(list_entries.c.number_key == bindparam("key"))
_LEAD_AND_LISTS = union_all(_FIND_LEAD_TAGGED, _LISTS_TAGGED)

# The same three statements for the drivers the gate talks to directly.
_SQL_LEAD = (
    "SELECT 'lead', segment, product, assigned_at, dialled_number FROM leads"
    " WHERE campaign = {0} AND number_key = {1}"
)
_SQL_LISTS = (
    "SELECT list_kind, reason, NULL, NULL, NULL FROM compliance_list_entries WHERE number_key = {2}"
)
_SQLITE_SQL = {
    "lead": _SQL_LEAD.format("?", "?"),
    "lists": _SQL_LISTS.format("", "", "?"),
    "both": _SQL_LEAD.format("?", "?") + " UNION ALL " + _SQL_LISTS.format("", "", "?"),
}
_ASYNCPG_SQL = {
    "lead": _SQL_LEAD.format("$1", "$2"),
    "lists": _SQL_LISTS.format("", "", "$1"),
    "both": _SQL_LEAD.format("$1", "$2") + " UNION ALL " + _SQL_LISTS.format("", "", "$2"),
}

logger = logging.getLogger(__name__)


def _parse_tagged(
    rows: Sequence[Any], dt_out: Callable[[Any], Any]
) -> tuple[GateLead | None, ListStatus]:
    lead: GateLead | None = None
    dnc = special = None
    for tag, a, b, c, d in rows:
        if tag == "lead":
            lead = GateLead(a, b, dt_out(c), d)
        elif tag == ListKind.DNC.value:
            dnc = a
        elif tag == ListKind.SPECIAL.value:
            special = a
    if dnc is None and special is None:
        return lead, _NOT_LISTED
    return lead, ListStatus(
        blacklisted=dnc is not None,
        blacklist_reason=dnc or "",
        special=special is not None,
        special_reason=special or "",
    )


def _request(
    number: str,
    campaign: str,
    found: Campaign,
    product: str | None,
    when: datetime,
    caller_id: str | None,
    is_callback: bool,
    dialled_number: str | None,
    segment: str | None,
    lead: GateLead | None,
) -> CallRequest:
    """The ``CallRequest`` for a call, from what the caller gave and the campaign's lead."""
    chosen_product = product or (lead.product if lead and lead.product else found.products[0])
    # Whether the call follows the customer's own call is the lead's fact, not the
    # caller's flag (art. 35): a lead with a dialled number is only ever called back.
    lead_dialled = lead.dialled_number if lead else None
    dialled = lead_dialled or dialled_number
    is_callback = is_callback or bool(lead_dialled)
    if caller_id is None:
        # A callback presents the number the customer dialled (A.5); the engine checks it.
        caller_id = dialled if is_callback and dialled else found.caller_id
    return CallRequest(
        number=number,
        campaign=campaign,
        product=chosen_product,
        at=when,
        caller_id=caller_id,
        segment=(segment or lead.segment or "default") if lead else (segment or "default"),
        is_callback=is_callback,
        dialled_number=dialled,
        assigned_at=lead.assigned_at if lead else None,
        campaign_has_script=found.has_script,
    )


def _identity(value: Any) -> Any:
    return value


class ComplianceGate:
    """Pre-dial gate over a ledger, the lists, the campaign registry and the lead lists.

    Per call: the campaign comes from ``CampaignStore.find_cached`` (memory, 1 s
    TTL, dropped at once by changes made through the same store); the lead and
    the list status come from one SQL query (lists not mirrored) or the lead from
    SQL and the list status inside the Redis ledger's snapshot script (lists
    mirrored on the ledger's Redis), or, for ``check_and_reserve`` with the
    leads mirrored there too, both inside that script; then the ledger decides
    and reserves. A
    caller that already holds the lead (the dialer) can pass ``segment`` and
    ``assigned_at`` and spare the lead lookup.
    """

    def __init__(
        self,
        policy: Policy,
        ledger: ContactLedger,
        lists: ListStore,
        campaigns: CampaignStore,
        leads: LeadStore | None = None,
        *,
        hold_read_connection: bool = False,
        campaign_stale_s: float = 10.0,
    ) -> None:
        if str(ledger.policy.version) != str(policy.version):
            raise ValueError(
                f"ledger evaluates policy {ledger.policy.version}, gate was given {policy.version}"
            )
        # Every store must key numbers like the ledger does (policy.numbers): a list
        # entry or lead keyed with another plan would silently never match.
        for name, plan in (("lists", lists.plan), ("leads", leads.plan if leads else None)):
            if plan is not None and plan != policy.numbers:
                raise ValueError(
                    f"the {name} store parses numbers with {plan!r}, the policy with "
                    f"{policy.numbers!r}: give it plan=policy.numbers"
                )
        self.policy = policy
        self.ledger = ledger
        self.lists = lists
        self.campaigns = campaigns
        self.leads = leads
        self._plan = policy.numbers
        self._version = str(policy.version)
        mirror = lists.mirror
        self._mirror_keys: tuple[str, str] | None = None
        if (
            isinstance(ledger, RedisLedger)
            and mirror is not None
            and mirror.client is ledger.client
        ):
            self._mirror_keys = mirror.reason_keys
        # The lead mirror beside it: check_and_reserve then reads no SQL at all.
        self._lead_mirror: RedisLeadMirror | None = None
        if (
            isinstance(ledger, RedisLedger)
            and self._mirror_keys is not None
            and leads is not None
            and leads.mirror is not None
            and leads.mirror.client is ledger.client
        ):
            self._lead_mirror = leads.mirror
        # Lead and lists in one query only when both live in the same SQL database.
        self._joint_read = mirror is None and leads is not None and leads.engine is lists.engine
        self._reader = reader(lists.engine)
        dialect = lists.engine.dialect
        self._sqlite = dialect.name == "sqlite"
        self._driver_sql: dict[str, str] | None = None
        # aiosqlite: one connection held for the gate's reads (see ``_sqlite_rows``).
        self._hold = False
        self._held: AsyncConnection | None = None
        self._held_db: Any = None
        self._held_lock = asyncio.Lock()
        self._campaign_lookups: dict[str, asyncio.Future[Campaign | None]] = {}
        self._campaign_stale_s = campaign_stale_s
        self._campaign_refreshes: dict[str, asyncio.Task[Campaign | None]] = {}
        if self._sqlite and dialect.driver == "aiosqlite":
            self._driver_sql = _SQLITE_SQL
            self._hold = hold_read_connection
        elif dialect.name == "postgresql" and dialect.driver == "asyncpg":
            self._driver_sql = _ASYNCPG_SQL
        # SQLAlchemy's own conversion of the assignment time column on this dialect.
        self._dt_out: Callable[[Any], Any] = (
            UtcDateTime().dialect_impl(dialect).result_processor(dialect, None) or _identity
        )

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
        segment: str | None = None,
        assigned_at: datetime | None = None,
    ) -> CallRequest | Decision:
        """The ``CallRequest`` the ledger gets, or a refusal when the campaign is unknown.

        ``assigned_at`` (with ``segment``, ``product``, ``dialled_number``) given:
        the caller holds the lead, the gate does not look it up.
        """
        prepared = await self._prepare(
            number,
            campaign,
            product,
            at,
            caller_id,
            is_callback,
            dialled_number,
            segment,
            assigned_at,
            with_lists=False,
            attempt_id="",
            log_unknown=False,
        )
        return prepared if isinstance(prepared, Decision) else prepared[0]

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
        segment: str | None = None,
        assigned_at: datetime | None = None,
    ) -> Decision:
        """Would this call be allowed now? Nothing is reserved (the decision is logged)."""
        prepared = await self._prepare(
            number,
            campaign,
            product,
            at,
            caller_id,
            is_callback,
            dialled_number,
            segment,
            assigned_at,
            with_lists=self._mirror_keys is None,
            attempt_id="",
            log_unknown=True,
        )
        if isinstance(prepared, Decision):
            return prepared
        request, lists = prepared
        if lists is None:
            assert isinstance(self.ledger, RedisLedger) and self._mirror_keys is not None
            return await self.ledger.check_listed(request, self._mirror_keys)
        return await self.ledger.check(request, lists)

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
        segment: str | None = None,
        assigned_at: datetime | None = None,
    ) -> Decision:
        """Check and, if allowed, reserve attempt ``attempt_id`` in one atomic step.

        After the dial, report how it ended with ``resolve(attempt_id, outcome)``
        (``AttemptOutcome.CANCELLED`` when it was never originated). An unknown
        campaign is refused (``UNKNOWN_CAMPAIGN``) and the refusal is logged.
        """
        if self._lead_mirror is not None and assigned_at is None:
            decision = await self._reserve_mirrored(
                number,
                campaign,
                product,
                at or utcnow(),
                caller_id,
                is_callback,
                dialled_number,
                segment,
                attempt_id,
            )
            if decision is not None:
                return decision
        prepared = await self._prepare(
            number,
            campaign,
            product,
            at,
            caller_id,
            is_callback,
            dialled_number,
            segment,
            assigned_at,
            with_lists=self._mirror_keys is None,
            attempt_id=attempt_id,
            log_unknown=True,
        )
        if isinstance(prepared, Decision):
            return prepared
        request, lists = prepared
        if lists is None:
            assert isinstance(self.ledger, RedisLedger) and self._mirror_keys is not None
            return await self.ledger.check_and_reserve_listed(
                request, attempt_id=attempt_id, mirror_keys=self._mirror_keys
            )
        return await self.ledger.check_and_reserve(request, attempt_id=attempt_id, lists=lists)

    async def _reserve_mirrored(
        self,
        number: str,
        campaign: str,
        product: str | None,
        when: datetime,
        caller_id: str | None,
        is_callback: bool,
        dialled_number: str | None,
        segment: str | None,
        attempt_id: str,
    ) -> Decision | None:
        """``check_and_reserve`` with the lead, the lists and the history from one Redis script.

        None when this path does not apply (unknown campaign, unparseable number:
        the general path answers). When the lead mirror cannot vouch for the lead
        (not built, being rebuilt, a write in progress) the lead is read from SQL.
        """
        found = await self._campaign(campaign)
        if found is None:
            return None
        key = self._key(number)
        if key is None:
            return None
        assert isinstance(self.ledger, RedisLedger) and self._mirror_keys is not None
        assert self._lead_mirror is not None
        snapshot = await self.ledger.snapshot_listed(
            key, when, self._mirror_keys, self._lead_mirror.lookup(found.name)
        )
        mirrored = decode_mirrored(snapshot.lead)
        lead = await self._lead(found.name, key) if isinstance(mirrored, LeadUnknown) else mirrored
        request = _request(
            number,
            campaign,
            found,
            product,
            when,
            caller_id,
            is_callback,
            dialled_number,
            segment,
            lead,
        )
        return await self.ledger.reserve_listed(request, attempt_id=attempt_id, snapshot=snapshot)

    async def resolve(self, attempt_id: str, outcome: AttemptOutcome) -> None:
        await self.ledger.resolve(attempt_id, outcome)

    async def close(self) -> None:
        """Give back the held read connection (``hold_read_connection``); the gate stays usable."""
        # a finished refresh is its done callback's (which reads its exception)
        refreshes = [task for task in self._campaign_refreshes.values() if not task.done()]
        for task in refreshes:
            task.cancel()
        for task in refreshes:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._held_lock:
            held, self._held, self._held_db = self._held, None, None
            if held is not None:
                await held.close()

    async def record_refusal(
        self,
        number: str,
        campaign: str,
        product: str,
        at: datetime | None = None,
        attempt_id: str = "",
    ) -> None:
        await self.ledger.record_refusal(number, campaign, product, at or utcnow(), attempt_id)

    # --- internals ---------------------------------------------------------------------------

    async def _prepare(
        self,
        number: str,
        campaign: str,
        product: str | None,
        at: datetime | None,
        caller_id: str | None,
        is_callback: bool,
        dialled_number: str | None,
        segment: str | None,
        assigned_at: datetime | None,
        *,
        with_lists: bool,
        attempt_id: str,
        log_unknown: bool,
    ) -> tuple[CallRequest, ListStatus | None] | Decision:
        """(request, list status) or the unknown-campaign refusal.

        The list status is None when it is not wanted (``with_lists`` False: the
        Redis ledger reads it from the mirror itself).
        """
        when = at or utcnow()
        found = await self._campaign(campaign)
        if found is None:
            decision = self._unknown_campaign(campaign)
            if log_unknown:
                request = CallRequest(
                    number, campaign, product or "", when, caller_id or "", segment or "default"
                )
                await self.ledger.record_decision(request, decision, attempt_id)
            return decision
        lead: GateLead | None
        lists: ListStatus | None = None
        if assigned_at is not None:
            lead = GateLead(segment or "default", product or "", assigned_at, dialled_number)
            if with_lists:
                key = self._key(number)
                if key is None:
                    lists = _NOT_LISTED
                elif self.lists.mirror is None:
                    lists = await self._sql_lists(key)
                else:
                    lists = await self.lists.status(number)
        else:
            key = self._key(number)
            if key is None:
                lead, lists = None, (_NOT_LISTED if with_lists else None)
            elif with_lists and self._joint_read:
                lead, lists = await self._lead_and_lists(found.name, key)
            else:
                lead = await self._lead(found.name, key)
                if with_lists:
                    if self.lists.mirror is None:
                        lists = await self._sql_lists(key)
                    else:
                        lists = await self.lists.status(number)
        request = _request(
            number,
            campaign,
            found,
            product,
            when,
            caller_id,
            is_callback,
            dialled_number,
            segment,
            lead,
        )
        return request, lists

    def _campaign_cached(self, name: str) -> tuple[bool, Campaign | None]:
        """The campaign from memory, without waiting: ``(False, None)`` when it must be read.

        An entry past the store's TTL but read less than ``campaign_stale_s`` ago
        is still answered, while one lookup refreshes it in the background: a
        session never waits for the campaign read (a pool checkout, often a new
        SQLite connection: tens of ms under load) that every TTL expiry costs,
        and a change made elsewhere is still seen within the TTL plus that read.
        If the refresh fails, the entry ages out and the next caller waits for a
        lookup of its own, which raises (the AGI route then fails closed).
        """
        fresh, found = self.campaigns.peek_cached(name)
        if fresh or self._campaign_stale_s <= 0.0:
            return fresh, found
        recent, stale = self.campaigns.peek_recent(name, self._campaign_stale_s)
        if not recent:
            return False, None
        if name not in self._campaign_lookups and name not in self._campaign_refreshes:
            task = asyncio.get_running_loop().create_task(self._lookup_campaign(name))
            self._campaign_refreshes[name] = task
            task.add_done_callback(lambda done: self._campaign_refreshed(name, done))
        return True, stale

    def _campaign_refreshed(self, name: str, task: asyncio.Task[Campaign | None]) -> None:
        if self._campaign_refreshes.get(name) is task:
            del self._campaign_refreshes[name]
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.warning("campaign refresh failed (the stale entry ages out): %r", exc)

    async def _campaign(self, name: str) -> Campaign | None:
        """The campaign: from memory when it can (``_campaign_cached``), else looked up."""
        fresh, found = self._campaign_cached(name)
        return found if fresh else await self._lookup_campaign(name)

    async def _lookup_campaign(self, name: str) -> Campaign | None:
        """``find_cached``, one lookup per name at a time.

        When the cache entry expires under load, every session in flight would miss
        at once and each read the campaign (a pool checkout, a statement, a
        rollback, often a new connection); here the first one reads and the others
        wait for its answer, which is no older than their own read would be. If
        that lookup fails or is cancelled, a waiter looks up by itself.
        """
        while (pending := self._campaign_lookups.get(name)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
        future: asyncio.Future[Campaign | None] = asyncio.get_running_loop().create_future()
        self._campaign_lookups[name] = future
        try:
            found = await self.campaigns.find_cached(name)
            future.set_result(found)
            return found
        finally:
            del self._campaign_lookups[name]
            if not future.done():
                future.cancel()  # the waiters look up by themselves (the error is raised here)

    def _key(self, number: str) -> str | None:
        try:
            return self._plan.parse(number).key
        except InvalidNumber:
            return None  # the engine refuses it with INVALID_NUMBER

    async def _lead(self, campaign: str, key: str) -> GateLead | None:
        if self.leads is None:
            return None
        lead, _ = _parse_tagged(await self._rows("lead", campaign, key), self._dt_out)
        return lead

    async def _lead_and_lists(self, campaign: str, key: str) -> tuple[GateLead | None, ListStatus]:
        return _parse_tagged(await self._rows("both", campaign, key), self._dt_out)

    async def _sql_lists(self, key: str) -> ListStatus:
        return _parse_tagged(await self._rows("lists", "", key), self._dt_out)[1]

    async def _rows(self, which: str, campaign: str, key: str) -> Sequence[Any]:
        """Tagged rows (see ``_LEAD_AND_LISTS``) of one read statement, no transaction.

        On SQLite and asyncpg the statement goes to the driver connection directly
        (aiosqlite: one thread hop instead of about four through the adapter).
        """
        if self._hold:
            return await self._sqlite_rows(which, campaign, key)
        async with self._reader.connect() as conn:
            if self._driver_sql is not None:
                db: Any = (await conn.get_raw_connection()).driver_connection
                sql = self._driver_sql[which]
                if self._sqlite:
                    params = (
                        (campaign, key, key)
                        if which == "both"
                        else ((key,) if which == "lists" else (campaign, key))
                    )
                    return list(await db.execute_fetchall(sql, params))
                args = (key,) if which == "lists" else (campaign, key)
                return list(await db.fetch(sql, *args))
            stmt: Executable = (
                _LEAD_AND_LISTS
                if which == "both"
                else _LISTS_TAGGED
                if which == "lists"
                else _FIND_LEAD_TAGGED
            )
            return list((await conn.execute(stmt, {"campaign": campaign, "key": key})).all())

    async def _sqlite_rows(self, which: str, campaign: str, key: str) -> Sequence[Any]:
        """``_rows`` on the held aiosqlite connection, opened on first use.

        A pool checkout per statement costs a queue wait under load and a rollback
        (another thread hop) at check-in; the held connection's worker thread runs
        the statements of concurrent sessions back to back instead. The reader's
        options apply (no BEGIN): every statement is still its own WAL snapshot,
        so nothing is staler than with a fresh connection. A failed statement
        gives the connection back; the next call opens another.
        """
        db = self._held_db
        if db is None:
            async with self._held_lock:
                if self._held_db is None:
                    conn = await self._reader.connect()
                    opened = False
                    try:
                        self._held_db = (await conn.get_raw_connection()).driver_connection
                        opened = True
                    finally:
                        if not opened:
                            await conn.close()
                    self._held = conn
                db = self._held_db
        assert self._driver_sql is not None
        params = (
            (campaign, key, key)
            if which == "both"
            else ((key,) if which == "lists" else (campaign, key))
        )
        try:
            return list(await db.execute_fetchall(self._driver_sql[which], params))
        except Exception:
            if self._held_db is db:
                await self.close()
            raise

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
            policy_version=self._version,
        )


_NOT_LISTED = ListStatus()


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
        await self.gate.close()
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
    """SQL stores on ``db_url``; with ``redis_url`` the ledger, a list and a lead mirror on Redis.

    With Redis, the list and lead mirrors are rebuilt from SQL at start (SQL is
    the system of record; the mirrors only serve reads: ``status``, the gate).
    """
    engine = await open_engine(db_url, schema=schema)
    client: aioredis.Redis | None = None
    ledger: ContactLedger
    mirror: RedisListMirror | None = None
    lead_mirror: RedisLeadMirror | None = None
    if redis_url:
        client = aioredis.Redis.from_url(redis_url, max_connections=64)
        ledger = RedisLedger(client, policy, prefix=redis_prefix + "ledger:")
        mirror = RedisListMirror(client, prefix=redis_prefix + "lists:")
        lead_mirror = RedisLeadMirror(client, prefix=redis_prefix + "leads:")
    else:
        ledger = SqlLedger(engine, policy)
    lists = ListStore(engine, plan=policy.numbers, mirror=mirror)
    if mirror is not None:
        await lists.rebuild_mirror()
    leads = LeadStore(
        engine, plan=policy.numbers, customer_kinds=policy.customer_kinds, mirror=lead_mirror
    )
    if lead_mirror is not None:
        await leads.rebuild_mirror()
    campaigns = CampaignStore(engine)
    gate = ComplianceGate(policy, ledger, lists, campaigns, leads, hold_read_connection=True)
    return ComplianceStores(engine, ledger, lists, leads, campaigns, gate, client)
