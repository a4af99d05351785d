"""Lead lists: CSV import into a campaign, lead status, and atomic claiming for the dialer.

CSV columns (header required, any order): ``number`` (required), ``name``,
``segment``, ``product``, ``assigned_at`` (ISO 8601; a time without offset is
in the policy time zone; empty: the import time), ``dialled_number`` (the number
the customer called us on: the lead came from their own call, so every call to it
is a return / care call presenting that number, rule A.5 / art. 35; see
``dialer.runner.presented_caller_id``). Unknown columns are refused.

Import is all or nothing: every bad row is reported by line and field in one
``ImportFailed`` and nothing is written. Rows with the same number key (in the
file, or already in the campaign) are merged into one lead: empty fields are
filled from the other row, ``assigned_at`` keeps the earliest time (the data
recall clock of rule A.6 starts at the first assignment), an existing lead keeps
its status and history.

The dialer takes work with ``due_leads(campaign, now, limit)``, which claims
leads atomically (status -> in_progress) so two dialer processes never get the
same lead: PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE`` in one
transaction; SQLite one ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING``
(under ``BEGIN IMMEDIATE``). It reports back with ``update_lead``. At start-up a
dialer hands back the claims it still holds with ``release_stale(..., claimer=its
own name)``; other dialer processes' claims on the campaign are left alone.

``RedisLeadMirror`` optionally mirrors the fields the compliance gate reads
(segment, product, assigned_at, dialled_number) into Redis, so that the gate
reads them inside the Redis ledger's snapshot script instead of from SQL. SQL
stays the system of record; ``LeadStore`` writes through to the mirror; see
the class for how a write in progress or a rebuild never lets the gate read a
stale lead (it reads SQL instead).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.campaigns import UnknownCampaign
from compliance.ledger import utcnow
from compliance.lists import ImportFailed, ImportProblem, csv_rows, read_csv_text
from compliance.numbers import InvalidNumber, NumberKind, NumberPlan, mask
from compliance.tables import campaigns as campaigns_table
from compliance.tables import lead_lists as lead_lists_table
from compliance.tables import leads as leads_table
from compliance.tables import reader

log = logging.getLogger(__name__)

LEAD_COLUMNS = ("number", "name", "segment", "product", "assigned_at", "dialled_number")


class LeadStatus(StrEnum):
    NEW = "new"  # never tried
    IN_PROGRESS = "in_progress"  # claimed by a dialer process
    RETRY = "retry"  # tried (no answer, busy...) or deferred by the gate; due at next_attempt_at
    CALLBACK_DUE = "callback_due"  # the customer asked to be called back at next_attempt_at
    DONE = "done"  # finished (order, talked, retries exhausted)
    REFUSED = "refused"  # may not be called (gate refusal without retry, do-not-call...); reasons


DUE_STATUSES = (LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.CALLBACK_DUE)


@dataclass(frozen=True, slots=True)
class Lead:
    id: int
    campaign: str
    number_key: str
    name: str
    segment: str
    product: str
    assigned_at: datetime
    dialled_number: str | None
    status: LeadStatus
    reasons: tuple[str, ...]
    attempts: int
    next_attempt_at: datetime | None
    claimed_by: str
    claimed_at: datetime | None
    updated_at: datetime

    @property
    def masked(self) -> str:
        return mask(self.number_key)

    def __repr__(self) -> str:  # never print a full number by accident
        return (
            f"Lead(id={self.id}, campaign={self.campaign!r}, number={self.masked}, "
            f"status={self.status.value})"
        )


@dataclass(frozen=True, slots=True)
class LeadImportReport:
    rows: int
    created: int
    merged_in_file: int  # rows folded into an earlier row of the same file
    merged_existing: int  # leads already in the campaign that the file updated

    @property
    def duplicates_merged(self) -> int:
        return self.merged_in_file + self.merged_existing


@dataclass(slots=True)
class _Row:
    line: int
    key: str
    name: str
    segment: str
    product: str
    assigned_at: datetime | None
    dialled_number: str | None


def _parse_time(text: str, tz: tzinfo) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _merge(a: _Row, b: _Row) -> _Row:
    """``a`` keeps what it has; empty fields come from ``b``; earliest assignment wins."""
    times = [t for t in (a.assigned_at, b.assigned_at) if t is not None]
    return _Row(
        line=a.line,
        key=a.key,
        name=a.name or b.name,
        segment=a.segment or b.segment,
        product=a.product or b.product,
        assigned_at=min(times) if times else None,
        dialled_number=a.dialled_number or b.dialled_number,
    )


def parse_lead_rows(
    text: str,
    source: str,
    tz: tzinfo,
    plan: NumberPlan,
    kinds: frozenset[NumberKind] | None = None,
) -> tuple[list[_Row], int, int]:
    """Validated, merged rows; (rows, row count, merged count). Raises ``ImportFailed``."""
    rows, problems = csv_rows(text, source, required=["number"], allowed=LEAD_COLUMNS)
    merged: dict[str, _Row] = {}
    folded = 0
    for line, row in rows:
        ok = True
        key = ""
        try:
            parsed = plan.parse(row["number"])
            key = parsed.key
            if kinds is not None and parsed.kind not in kinds:
                allowed = ", ".join(sorted(k.value for k in kinds))
                problems.append(
                    ImportProblem(
                        line,
                        "number",
                        f"{parsed.masked} is a {parsed.kind.value} number, not a customer number "
                        f"(policy numbers.customer_kinds: {allowed})",
                    )
                )
                ok = False
        except InvalidNumber as exc:
            problems.append(ImportProblem(line, "number", str(exc)))
            ok = False
        assigned: datetime | None = None
        if row.get("assigned_at"):
            try:
                assigned = _parse_time(row["assigned_at"], tz)
            except ValueError:
                problems.append(
                    ImportProblem(
                        line,
                        "assigned_at",
                        f"{row['assigned_at']!r} is not an ISO 8601 time like 2026-11-02T09:30",
                    )
                )
                ok = False
        dialled: str | None = None
        if row.get("dialled_number"):
            try:
                dialled = plan.parse(row["dialled_number"]).key
            except InvalidNumber as exc:
                problems.append(ImportProblem(line, "dialled_number", str(exc)))
                ok = False
        for name, limit in (("name", 256), ("segment", 64), ("product", 128)):
            if len(row.get(name, "")) > limit:
                problems.append(ImportProblem(line, name, f"longer than {limit} characters"))
                ok = False
        if not ok:
            continue
        item = _Row(
            line,
            key,
            row.get("name", ""),
            row.get("segment", ""),
            row.get("product", ""),
            assigned,
            dialled,
        )
        if key in merged:
            merged[key] = _merge(merged[key], item)
            folded += 1
        else:
            merged[key] = item
    if problems:
        problems.sort(key=lambda p: p.line)
        raise ImportFailed(source, problems)
    return list(merged.values()), len(rows), folded


def _lead_from_row(r: Any) -> Lead:
    return Lead(
        id=r.id,
        campaign=r.campaign,
        number_key=r.number_key,
        name=r.name,
        segment=r.segment,
        product=r.product,
        assigned_at=r.assigned_at,
        dialled_number=r.dialled_number,
        status=LeadStatus(r.status),
        reasons=tuple(json.loads(r.reasons)),
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        claimed_by=r.claimed_by,
        claimed_at=r.claimed_at,
        updated_at=r.updated_at,
    )


# --- the Redis lead mirror -----------------------------------------------------------------

# KEYS: generation, writes, pending; ARGV: token, deadline, hash prefix, hash suffix, keys...
_BEGIN = """
redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local g = redis.call('GET', KEYS[1])
if g then
  local h = ARGV[3] .. g .. ARGV[4]
  local mark = '?' .. ARGV[1]
  for i = 5, #ARGV do
    redis.call('HSET', h, ARGV[i], mark)
  end
  redis.call('SADD', ARGV[3] .. g .. ':index', h)
end
return 1
"""

# KEYS: generation; ARGV: token, hash prefix, hash suffix, then (key, entry or '') pairs
_FINISH = """
local g = redis.call('GET', KEYS[1])
if g then
  local h = ARGV[2] .. g .. ARGV[3]
  local mark = '?' .. ARGV[1]
  for i = 4, #ARGV, 2 do
    if ARGV[i + 1] ~= '' and redis.call('HGET', h, ARGV[i]) == mark then
      redis.call('HSET', h, ARGV[i], ARGV[i + 1])
    else
      redis.call('HSET', h, ARGV[i], '?')
    end
  end
  redis.call('SADD', ARGV[2] .. g .. ':index', h)
end
return 1
"""

# KEYS: generation, writes, pending, sequence; ARGV: new generation, writes seen at its
# start, now (unix s). Returns the replaced generation ('' none), or 0 when refused.
_SWITCH = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then
  return 0
end
if (redis.call('GET', KEYS[4]) or '0') ~= ARGV[1] then
  return 0
end
local p = redis.call('HGETALL', KEYS[3])
for i = 1, #p, 2 do
  if tonumber(p[i + 1]) >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('DEL', KEYS[3])
local old = redis.call('GET', KEYS[1]) or ''
redis.call('SET', KEYS[1], ARGV[1])
return old
"""

_CHUNK = 1000


def _entry(segment: str, product: str, assigned_at: datetime | None, dialled: str | None) -> bytes:
    """A mirror entry: what the gate reads of a lead, as JSON."""
    return json.dumps(
        [segment, product, assigned_at.isoformat() if assigned_at else None, dialled],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


@dataclass(frozen=True, slots=True)
class GateLead:
    """The fields of a lead the compliance gate reads (the mirror holds exactly these)."""

    segment: str
    product: str
    assigned_at: datetime | None
    dialled_number: str | None


class LeadUnknown:
    """The mirror cannot answer for this lead (not built, rebuilding, a write in progress)."""


LEAD_UNKNOWN = LeadUnknown()


def decode_mirrored(raw: Any) -> GateLead | LeadUnknown | None:
    """The lead mirror's answer as read by the ledger's snapshot script.

    ``GateLead``; None when the campaign has no lead for the number; ``LEAD_UNKNOWN``
    when the mirror cannot say (the caller reads SQL).
    """
    if not isinstance(raw, bytes):
        return LEAD_UNKNOWN  # 0: no generation (or None: not asked)
    if not raw:
        return None
    if raw[:1] == b"?":
        return LEAD_UNKNOWN
    segment, product, assigned, dialled = json.loads(raw)
    return GateLead(
        segment, product, datetime.fromisoformat(assigned) if assigned else None, dialled
    )


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class RedisLeadMirror:
    """The gate's fields of every lead in Redis, per campaign, kept by ``LeadStore``.

    Keys under the prefix ``P`` (default ``dialer:leads:``):

    ``Pgen``          STRING the current generation; absent: no mirror (the gate reads SQL)
    ``Pseq``          STRING counter the generations are numbered from
    ``Pwrites``       STRING bumped by every write through the store, begun or finished
    ``Ppending``      HASH   write token -> deadline (unix s) of the writes in progress
    ``Pg<gen>:c:<campaign>`` HASH number key -> entry: JSON ``[segment, product,
                      assigned_at, dialled_number]``; ``?<token>`` while that write is in
                      progress; ``?`` unknown. No field: the campaign has no such lead.
    ``Pg<gen>:index`` SET    the hashes of a generation (to drop it)

    A write (``LeadStore.import_text``): ``begin`` marks the affected entries
    ``?<token>`` and registers the token *before* the SQL transaction commits;
    ``finish`` sets the committed values *only where its own mark is still
    there*, else ``?`` (two writers met: the gate reads SQL for that number).
    So an entry is never older than SQL: while a write is in flight, or after a
    writer died before ``finish``, the gate reads SQL for those numbers. Only
    the import writes these fields; ``due_leads``, ``update_lead`` and
    ``release_stale`` change status and claim columns, which are not mirrored.

    ``rebuild`` (at start-up) fills a new generation from SQL and switches to it
    only if no write through the store began or finished meanwhile, no write is
    still in progress (expired tokens excepted: a writer that died) and no later
    rebuild started; otherwise the current generation stays (it was kept by the
    writes) and a refused first build leaves no mirror, i.e. SQL reads. Leads
    written to SQL by other means than ``LeadStore`` are not seen until the next
    rebuild: write through the store.
    """

    def __init__(
        self, client: aioredis.Redis, prefix: str = "dialer:leads:", *, write_timeout_s: int = 3600
    ) -> None:
        self._r = client
        self._prefix = prefix
        self._write_timeout_s = write_timeout_s
        self._gen = (prefix + "gen").encode()
        self._seq = (prefix + "seq").encode()
        self._writes = (prefix + "writes").encode()
        self._pending = (prefix + "pending").encode()
        self._hash_prefix = (prefix + "g").encode()
        self._begin = client.register_script(_BEGIN)
        self._finish = client.register_script(_FINISH)
        self._switch = client.register_script(_SWITCH)

    @property
    def client(self) -> aioredis.Redis:
        return self._r

    def _suffix(self, campaign: str) -> bytes:
        return b":c:" + campaign.encode()

    def lookup(self, campaign: str) -> tuple[bytes, bytes, bytes]:
        """What the Redis ledger's snapshot script needs to read ``campaign``'s leads:
        the generation key, and the hash name before and after the generation."""
        return self._gen, self._hash_prefix, self._suffix(campaign)

    async def get(self, campaign: str, key: str) -> GateLead | LeadUnknown | None:
        """The mirror's answer for one lead (the snapshot script reads the same way)."""
        gen = await self._r.get(self._gen)
        if gen is None:
            return LEAD_UNKNOWN
        raw = await self._r.hget(self._hash_prefix + _as_bytes(gen) + self._suffix(campaign), key)
        return decode_mirrored(b"" if raw is None else _as_bytes(raw))

    async def begin(self, campaign: str, keys: Sequence[str]) -> str:
        """Mark ``keys`` of ``campaign`` as being written; call before the SQL commit."""
        token = uuid.uuid4().hex
        deadline = str(int(utcnow().timestamp()) + self._write_timeout_s)
        head: list[Any] = [token, deadline, self._hash_prefix, self._suffix(campaign)]
        for i in range(0, max(len(keys), 1), _CHUNK):
            await self._begin(
                keys=[self._gen, self._writes, self._pending], args=[*head, *keys[i : i + _CHUNK]]
            )
        return token

    async def finish(
        self, campaign: str, token: str, keys: Sequence[str], committed: dict[str, bytes]
    ) -> None:
        """End write ``token``: ``committed`` entries (read back in the transaction)
        replace its marks; keys without one (a failed write) become unknown."""
        head = [token, self._hash_prefix, self._suffix(campaign)]
        for i in range(0, len(keys), _CHUNK):
            args: list[Any] = list(head)
            for key in keys[i : i + _CHUNK]:
                args += [key, committed.get(key, b"")]
            await self._finish(keys=[self._gen], args=args)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.incr(self._writes)
            pipe.hdel(self._pending, token)
            await pipe.execute()

    async def rebuild(
        self, read: Callable[[], Awaitable[Iterable[tuple[str, str, bytes]]]], *, tries: int = 3
    ) -> bool:
        """Replace the mirror with ``read()``'s (campaign, number key, entry) rows from SQL.

        True when the new generation is in use; False when writes kept refusing
        the switch ``tries`` times (the current generation stays, if any).
        """
        for _ in range(tries):
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.incr(self._seq)
                pipe.get(self._writes)
                gen_no, writes = await pipe.execute()
            gen = str(gen_no).encode()
            index = self._hash_prefix + gen + b":index"
            by_campaign: dict[str, dict[str, bytes]] = {}
            for campaign, key, entry in await read():
                by_campaign.setdefault(campaign, {})[key] = entry
            for campaign, entries in by_campaign.items():
                name = self._hash_prefix + gen + self._suffix(campaign)
                items = list(entries.items())
                for i in range(0, len(items), _CHUNK):
                    async with self._r.pipeline(transaction=False) as pipe:
                        pipe.hset(name, mapping=dict(items[i : i + _CHUNK]))
                        pipe.sadd(index, name)
                        await pipe.execute()
            old = await self._switch(
                keys=[self._gen, self._writes, self._pending, self._seq],
                args=[gen, writes or b"0", str(int(utcnow().timestamp()))],
            )
            if old != 0:
                if old:
                    await self._drop(_as_bytes(old))
                return True
            await self._drop(gen)
        log.warning(
            "lead mirror not rebuilt: leads kept being written meanwhile (%d tries); "
            "the gate reads leads from SQL until the mirror is built",
            tries,
        )
        return False

    async def _drop(self, gen: bytes) -> None:
        """Delete a generation's hashes (not the current one)."""
        index = self._hash_prefix + gen + b":index"
        names = list(await self._r.smembers(index))
        for i in range(0, len(names), _CHUNK):
            await self._r.delete(*names[i : i + _CHUNK])
        await self._r.delete(index)


# What the mirror holds of a lead (with the campaign and number key it is filed under).
_MIRRORED = (
    leads_table.c.campaign,
    leads_table.c.number_key,
    leads_table.c.segment,
    leads_table.c.product,
    leads_table.c.assigned_at,
    leads_table.c.dialled_number,
)


def _mirror_entry(r: Any) -> bytes:
    return _entry(r.segment, r.product, r.assigned_at, r.dialled_number)


async def _committed_entries(
    conn: AsyncConnection, campaign: str, keys: Sequence[str]
) -> dict[str, bytes]:
    """The mirror entries of ``keys`` as this transaction leaves them (as SQL returns them)."""
    out: dict[str, bytes] = {}
    for i in range(0, len(keys), 500):
        rows = await conn.execute(
            select(*_MIRRORED).where(
                (leads_table.c.campaign == campaign)
                & leads_table.c.number_key.in_(keys[i : i + 500])
            )
        )
        for r in rows:
            out[r.number_key] = _mirror_entry(r)
    return out


_UNSET: Any = object()


async def _set_list(
    conn: AsyncConnection, campaign: str, keys: Sequence[str], list_name: str
) -> None:
    t = lead_lists_table
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        await conn.execute(t.delete().where((t.c.campaign == campaign) & t.c.number_key.in_(chunk)))
        await conn.execute(
            t.insert(),
            [{"campaign": campaign, "number_key": k, "list_name": list_name} for k in chunk],
        )


class LeadStore:
    """Leads in SQL (table ``leads``), shared engine of ``compliance.tables``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        plan: NumberPlan | None = None,
        customer_kinds: frozenset[NumberKind] | None = None,
        mirror: RedisLeadMirror | None = None,
    ) -> None:
        """``customer_kinds``: kinds of number a lead may have (the policy's), None: any.

        ``mirror``: the Redis lead mirror this store writes through to (the gate's fields).
        """
        self._engine = engine
        self._plan = plan or NumberPlan()
        self._kinds = customer_kinds
        self._postgres = engine.dialect.name == "postgresql"
        self._reader = reader(engine)
        self._mirror = mirror

    @property
    def mirror(self) -> RedisLeadMirror | None:
        return self._mirror

    async def rebuild_mirror(self) -> bool:
        """Copy the gate's fields of every lead into the Redis mirror (start-up, Redis loss).

        False when there is no mirror, or writes kept it from switching (see
        ``RedisLeadMirror.rebuild``: the gate then reads what it cannot trust from SQL).
        """
        if self._mirror is None:
            return False
        return await self._mirror.rebuild(self._mirror_rows)

    async def _mirror_rows(self) -> list[tuple[str, str, bytes]]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(select(*_MIRRORED))).all()
        return [(r.campaign, r.number_key, _mirror_entry(r)) for r in rows]

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def plan(self) -> NumberPlan:
        """The number plan the lead keys come from (must be the policy's, ``policy.numbers``)."""
        return self._plan

    async def import_csv(
        self,
        path: str | Path,
        campaign: str,
        *,
        tz: tzinfo,
        now: datetime | None = None,
        list_name: str | None = None,
    ) -> LeadImportReport:
        text, name = read_csv_text(path)
        return await self.import_text(
            text, name, campaign, tz=tz, now=now, list_name=list_name or Path(path).stem
        )

    async def import_text(
        self,
        text: str,
        source: str,
        campaign: str,
        *,
        tz: tzinfo,
        now: datetime | None = None,
        list_name: str | None = None,
    ) -> LeadImportReport:
        """Import CSV text into ``campaign`` (``UnknownCampaign`` if it does not exist);
        ``list_name`` names the list the leads came with (reports break figures down by it)."""
        when = now or utcnow()
        rows, count, folded = parse_lead_rows(text, source, tz, self._plan, self._kinds)
        keys = [row.key for row in rows]
        token: str | None = None
        committed: dict[str, bytes] = {}
        try:
            async with self._engine.begin() as conn:
                exists = (
                    await conn.execute(
                        select(campaigns_table.c.name).where(campaigns_table.c.name == campaign)
                    )
                ).first()
                if exists is None:
                    raise UnknownCampaign(campaign)
                if self._mirror is not None:
                    # before the commit: until finish() the gate reads these leads from SQL
                    token = await self._mirror.begin(campaign, keys)
                created, merged_existing = await self._write_rows(conn, campaign, rows, when)
                if list_name:
                    await _set_list(conn, campaign, keys, list_name)
                if token is not None:
                    committed = await _committed_entries(conn, campaign, keys)
        finally:
            if token is not None and self._mirror is not None:
                # committed is empty when the transaction failed: the marks become "unknown"
                await self._mirror.finish(campaign, token, keys, committed)
        return LeadImportReport(count, created, folded, merged_existing)

    async def _write_rows(
        self, conn: AsyncConnection, campaign: str, rows: Sequence[_Row], when: datetime
    ) -> tuple[int, int]:
        """Insert or merge the rows into ``campaign``; (created, merged into existing)."""
        created = merged_existing = 0
        existing = {
            r.number_key: r
            for r in (
                await conn.execute(select(leads_table).where(leads_table.c.campaign == campaign))
            ).all()
        }
        for row in rows:
            old = existing.get(row.key)
            if old is None:
                await conn.execute(
                    leads_table.insert().values(
                        campaign=campaign,
                        number_key=row.key,
                        name=row.name,
                        segment=row.segment or "default",
                        product=row.product,
                        assigned_at=row.assigned_at or when,
                        dialled_number=row.dialled_number,
                        status=LeadStatus.NEW.value,
                        reasons="[]",
                        attempts=0,
                        next_attempt_at=None,
                        claimed_by="",
                        updated_at=when,
                    )
                )
                created += 1
                continue
            merged_existing += 1
            await conn.execute(
                update(leads_table)
                .where(leads_table.c.id == old.id)
                .values(
                    name=old.name or row.name,
                    segment=old.segment
                    if old.segment != "default" or not row.segment
                    else row.segment,
                    product=old.product or row.product,
                    assigned_at=min(old.assigned_at, row.assigned_at or old.assigned_at),
                    dialled_number=old.dialled_number or row.dialled_number,
                    updated_at=when,
                )
            )
        return created, merged_existing

    async def get(self, lead_id: int) -> Lead:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(leads_table).where(leads_table.c.id == lead_id))
            ).first()
        if row is None:
            raise LookupError(f"no lead with id {lead_id}")
        return _lead_from_row(row)

    async def find(self, campaign: str, number: str) -> Lead | None:
        """The campaign's lead for ``number`` (raises ``InvalidNumber``), or None."""
        key = self._plan.parse(number).key
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(
                    select(leads_table).where(
                        (leads_table.c.campaign == campaign) & (leads_table.c.number_key == key)
                    )
                )
            ).first()
        return None if row is None else _lead_from_row(row)

    async def list_leads(self, campaign: str, status: LeadStatus | None = None) -> list[Lead]:
        query = select(leads_table).where(leads_table.c.campaign == campaign)
        if status is not None:
            query = query.where(leads_table.c.status == status.value)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(leads_table.c.id))).all()
        return [_lead_from_row(r) for r in rows]

    async def counts(self, campaign: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for lead in await self.list_leads(campaign):
            out[lead.status.value] = out.get(lead.status.value, 0) + 1
        return out

    async def due_leads(
        self, campaign: str, now: datetime, limit: int, *, claimer: str = ""
    ) -> list[Lead]:
        """Claim up to ``limit`` due leads (status -> in_progress), oldest due first.

        Due: status new / retry / callback_due and ``next_attempt_at`` empty or <= now.
        Callbacks come first, then retries, then new leads.
        """
        if limit <= 0:
            return []
        due = and_(
            leads_table.c.campaign == campaign,
            leads_table.c.status.in_([s.value for s in DUE_STATUSES]),
            or_(leads_table.c.next_attempt_at.is_(None), leads_table.c.next_attempt_at <= now),
        )
        order = (
            (leads_table.c.status != LeadStatus.CALLBACK_DUE.value),
            leads_table.c.next_attempt_at.is_(None),
            leads_table.c.next_attempt_at,
            leads_table.c.id,
        )
        values = {
            "status": LeadStatus.IN_PROGRESS.value,
            "claimed_by": claimer,
            "claimed_at": now,
            "updated_at": now,
        }
        async with self._engine.begin() as conn:
            if self._postgres:
                ids = (
                    (
                        await conn.execute(
                            select(leads_table.c.id)
                            .where(due)
                            .order_by(*order)
                            .limit(limit)
                            .with_for_update(skip_locked=True)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return []
                rows = (
                    await conn.execute(
                        update(leads_table)
                        .where(leads_table.c.id.in_(ids))
                        .values(**values)
                        .returning(*leads_table.c)
                    )
                ).all()
            else:
                inner = select(leads_table.c.id).where(due).order_by(*order).limit(limit)
                rows = (
                    await conn.execute(
                        update(leads_table)
                        .where(leads_table.c.id.in_(inner.scalar_subquery()))
                        .values(**values)
                        .returning(*leads_table.c)
                    )
                ).all()
        leads = [_lead_from_row(r) for r in rows]
        leads.sort(key=lambda lead: (lead.status != LeadStatus.CALLBACK_DUE, lead.id))
        return leads

    async def claim_lead(self, lead_id: int, now: datetime, *, claimer: str = "") -> Lead | None:
        """Claim one given lead for an agent's own call (preview, manual dial, a personal
        callback): it must be new, retry or callback_due, whatever its next attempt time
        says (the gate still decides whether the call is allowed). None: not available."""
        values = {
            "status": LeadStatus.IN_PROGRESS.value,
            "claimed_by": claimer,
            "claimed_at": now,
            "updated_at": now,
        }
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    update(leads_table)
                    .where(
                        leads_table.c.id == lead_id,
                        leads_table.c.status.in_([s.value for s in DUE_STATUSES]),
                    )
                    .values(**values)
                    .returning(*leads_table.c)
                )
            ).first()
        return None if row is None else _lead_from_row(row)

    async def update_lead(
        self,
        lead_id: int,
        *,
        status: LeadStatus,
        next_attempt_at: datetime | None = _UNSET,
        reasons: Sequence[str] | None = None,
        count_attempt: bool = False,
        now: datetime | None = None,
    ) -> Lead:
        """Report back on a claimed lead: its new status, when it is due again, why.

        ``count_attempt`` adds one to the lead's attempt counter (a dial happened).
        Leaving the status in_progress is refused: a claim ends with every update.
        """
        if status == LeadStatus.IN_PROGRESS:
            raise ValueError("update_lead ends a claim; in_progress is set by due_leads only")
        when = now or utcnow()
        values: dict[str, Any] = {
            "status": status.value,
            "claimed_by": "",
            "claimed_at": None,
            "updated_at": when,
        }
        if next_attempt_at is not _UNSET:
            values["next_attempt_at"] = next_attempt_at
        if reasons is not None:
            values["reasons"] = json.dumps(list(reasons), ensure_ascii=False)
        if count_attempt:
            values["attempts"] = leads_table.c.attempts + 1
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(leads_table)
                .where(leads_table.c.id == lead_id)
                .values(**values)
                .returning(*leads_table.c)
            )
            row = result.first()
        if row is None:
            raise LookupError(f"no lead with id {lead_id}")
        return _lead_from_row(row)

    async def release_stale(
        self,
        campaign: str,
        older_than: timedelta,
        now: datetime | None = None,
        *,
        claimer: str | None = None,
    ) -> int:
        """Give back leads claimed longer than ``older_than`` ago (a dialer died holding them).

        ``claimer``: only the leads that claimer holds (a restarting dialer hands back
        its own claims and leaves those of the other dialer processes on the campaign);
        None: every claimer's (only safe when no dialer of the campaign is running).
        """
        when = now or utcnow()
        stale = (
            (leads_table.c.campaign == campaign)
            & (leads_table.c.status == LeadStatus.IN_PROGRESS.value)
            & (leads_table.c.claimed_at < when - older_than)
        )
        if claimer is not None:
            stale = stale & (leads_table.c.claimed_by == claimer)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(leads_table)
                .where(stale)
                .values(
                    status=LeadStatus.RETRY.value, claimed_by="", claimed_at=None, updated_at=when
                )
                .returning(leads_table.c.id)
            )
            return len(result.all())
