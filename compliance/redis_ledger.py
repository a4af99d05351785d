"""The Redis contact ledger: hot contact history shared by many dialer processes and hosts.

Design (no rule is written twice: the policy is evaluated by the same pure
engine as on SQL, in Python; Redis only guards the append):

1. One Lua script reads, atomically, the customer's history, the outcomes of
   resolved attempts and a per-customer version counter (and, for the gate,
   the number's entries in the Redis list mirror: ``check_and_reserve_listed``,
   and the campaign's lead in the Redis lead mirror: ``snapshot_listed``).
2. The pure engine evaluates the request against that snapshot.
3. If allowed, a second Lua script appends the RESERVED attempt, bumps the
   version and logs the decision, *only if the version is still the one that
   was read* (compare-and-set). If another process changed the customer in the
   meantime the script appends nothing and returns the fresh snapshot, and we
   evaluate again (bounded: ``max_retries``, then ``LedgerContention``).
   Refusals need no compare-and-set: nothing is appended.

Keys, all under a configurable prefix ``P`` (default ``dialer:ledger:``). The
per-customer keys carry the number key as a hash tag so they share a slot:

``P{<key>}:h``  LIST  history, one compact JSON array per event, oldest first:
                      ``[kind, at_ms, campaign, product, outcome, attempt_id]``
                      (kind ``a`` attempt, ``r`` refusal; events are never rewritten)
``P{<key>}:o``  HASH  attempt id -> outcome, for attempts resolved after reservation
``P{<key>}:v``  STRING version counter, bumped by every change of ``:h`` / ``:o``
``P{<key>}:d``  LIST  decisions log (JSON), capped to the last ``decisions_kept``
``Pattempt:<id>`` STRING the number key of a reserved attempt (``resolve`` finds the
                      customer by it; expires after ``attempt_ttl_s``)
``Pdecided:<id>`` STRING the number key a decision with that attempt id was logged under
                      (refused attempts too; ``decisions_for_attempt`` finds the
                      customer by it; expires after ``attempt_ttl_s``)
``Pjournal``    STREAM every reservation, resolution, refusal and decision, in
                      order (trimmed to about ``journal_maxlen``): the feed that
                      copies the hot state into the SQL system of record.

Relation to SQL: SQL (``SqlLedger``) is the system of record; this ledger is hot,
recoverable state for deployments with several dialer processes or hosts.
``replay_journal`` copies the journal into a SQL ledger (idempotent per attempt
id; the decisions log too, idempotent per customer, decision time and attempt
id), and ``load_history`` seeds a customer's Redis history from SQL after a
Redis loss. The ``Pattempt:`` keys and ``P{...}`` keys are not cluster-safe
together in one script (the attempt key lives in another slot): run one Redis
primary (with a replica / Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from compliance.engine import history_horizon
from compliance.ledger import (
    DecisionRecord,
    DuplicateAttempt,
    LedgerContention,
    LedgerError,
    UnknownAttempt,
    check_resolution,
    decide,
    invalid_key,
    number_key,
    reason_to_dict,
    reasons_from_json,
    try_number_key,
    utcnow,
)
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactEvent,
    ContactKind,
    Decision,
    ListStatus,
)
from compliance.policy import Policy

if TYPE_CHECKING:  # only for a type: a Redis-only process need not import SQLAlchemy
    from compliance.sql_ledger import SqlLedger

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "dialer:ledger:"

# KEYS: h, v, o [, do-not-call reasons hash, special reasons hash of the list mirror
#       [, the lead mirror's generation key]]
# ARGV: [number key, when the mirror's hashes are given
#       [, lead hash name before and after the generation (compliance.leads.RedisLeadMirror)]]
# The mirror lookups ride along so that one round trip gives the whole snapshot
# the engine needs (a missing entry comes back as nil). The lead entry is 0 when
# the lead mirror has no generation (not built, or being rebuilt: ask SQL), ''
# when the campaign has no lead for the number. The lead hash is named from the
# generation read here, so it is not in KEYS (one Redis primary, see above).
_READ = """
local v = redis.call('GET', KEYS[2]) or '0'
local h = redis.call('LRANGE', KEYS[1], 0, -1)
-- the outcomes only override attempts of the history: none without one (a new customer)
local r = {v, h, #h > 0 and redis.call('HGETALL', KEYS[3]) or {}}
if #KEYS > 3 then
  r[4] = redis.call('HGET', KEYS[4], ARGV[1])
  r[5] = redis.call('HGET', KEYS[5], ARGV[1])
end
if #KEYS > 5 then
  local g = redis.call('GET', KEYS[6])
  if g then
    r[6] = redis.call('HGET', ARGV[2] .. g .. ARGV[3], ARGV[1]) or ''
  else
    r[6] = 0
  end
end
return r
"""

# KEYS: h, o, v, d, attempt, journal
# ARGV: expected version, event, decision, attempt ttl (0 = none), number key,
#       journal maxlen (0 = no journal), decisions kept
_RESERVE = """
-- one call for the attempt key (only ever a string) and the version
local got = redis.call('MGET', KEYS[5], KEYS[3])
if got[1] then
  return {-1}
end
local v = got[2] or '0'
if v ~= ARGV[1] then
  return {0, v, redis.call('LRANGE', KEYS[1], 0, -1), redis.call('HGETALL', KEYS[2])}
end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[3])
if redis.call('RPUSH', KEYS[4], ARGV[3]) > tonumber(ARGV[7]) then
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[7]), -1)
end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[5], ARGV[5], 'EX', ARGV[4])
else
  redis.call('SET', KEYS[5], ARGV[5])
end
if tonumber(ARGV[6]) > 0 then
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*', 't', 'reserve', 'k', ARGV[5],
             'e', ARGV[2], 'd', ARGV[3])
end
return {1}
"""

# KEYS: h, o, v, journal; ARGV: attempt id, new outcome, number key, journal maxlen
_RESOLVE = """
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then
  local found = false
  for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
    local ev = cjson.decode(e)
    if ev[1] == 'a' and ev[6] == ARGV[1] then
      current = ev[5]
      found = true
      break
    end
  end
  if not found then
    return {-1}
  end
end
if current == ARGV[2] then
  return {0, current}
end
if current ~= 'reserved' then
  return {-2, current}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 't', 'resolve', 'k', ARGV[3],
             'a', ARGV[1], 'o', ARGV[2])
end
return {1, current}
"""

# KEYS: h, v, journal; ARGV: event, number key, journal maxlen, attempt id
_REFUSAL = """
if ARGV[4] ~= '' then
  for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
    local ev = cjson.decode(e)
    if ev[1] == 'r' and ev[6] == ARGV[4] then
      return 0
    end
  end
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 't', 'refusal', 'k', ARGV[2],
             'e', ARGV[1])
end
return 1
"""

# KEYS: d, journal, decided; ARGV: decision, decisions kept, journal maxlen, number key,
#       attempt id ('' = none: KEYS[3] is not written), attempt ttl (0 = none)
_LOG = """
if redis.call('RPUSH', KEYS[1], ARGV[1]) > tonumber(ARGV[2]) then
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
end
if ARGV[5] ~= '' then
  if tonumber(ARGV[6]) > 0 then
    redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[6])
  else
    redis.call('SET', KEYS[3], ARGV[4])
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 't', 'decision', 'k', ARGV[4],
             'd', ARGV[1])
end
return 1
"""

_KIND_CODE = {ContactKind.ATTEMPT: "a", ContactKind.REFUSAL: "r"}
_CODE_KIND = {v: k for k, v in _KIND_CODE.items()}


# One encoder for every record this ledger writes: json.dumps() with options builds a
# new JSONEncoder per call, which costs more than the encoding of these small records.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _b2s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def encode_event(event: ContactEvent) -> str:
    at_ms = int(event.at.timestamp() * 1000)
    return _dumps(
        [
            _KIND_CODE[event.kind],
            at_ms,
            event.campaign,
            event.product,
            event.outcome.value,
            event.attempt_id,
        ]
    )


def _encode_attempt(request: CallRequest, attempt_id: str) -> str:
    """``encode_event`` of the RESERVED attempt of ``request``, without the event object."""
    return _dumps(
        [
            "a",
            int(request.at.timestamp() * 1000),
            request.campaign,
            request.product,
            "reserved",
            attempt_id,
        ]
    )


def decode_event(raw: Any, overrides: dict[str, str]) -> ContactEvent:
    kind, at_ms, campaign, product, outcome, attempt_id = json.loads(raw)
    if kind == "a" and attempt_id in overrides:
        outcome = overrides[attempt_id]
    return ContactEvent(
        at=datetime.fromtimestamp(at_ms / 1000, UTC),
        kind=_CODE_KIND[kind],
        campaign=campaign,
        product=product,
        outcome=AttemptOutcome(outcome),
        attempt_id=attempt_id,
    )


def _decode_snapshot(
    events: Sequence[Any], flat_hash: Sequence[Any], horizon_ms: int | None = None
) -> list[ContactEvent]:
    """The history of a snapshot, in stored order (the engine accepts any order).

    With ``horizon_ms``, attempts before it are left out (they cannot matter to the
    engine, see ``compliance.engine.history_horizon``); refusals are always kept.
    """
    overrides = (
        {_b2s(flat_hash[i]): _b2s(flat_hash[i + 1]) for i in range(0, len(flat_hash), 2)}
        if flat_hash
        else {}
    )
    out: list[ContactEvent] = []
    loads = json.loads
    for raw in events:
        kind, at_ms, campaign, product, outcome, attempt_id = loads(raw)
        if kind == "a":
            if horizon_ms is not None and at_ms < horizon_ms:
                continue
            if attempt_id in overrides:
                outcome = overrides[attempt_id]
        out.append(
            ContactEvent(
                at=datetime.fromtimestamp(at_ms / 1000, UTC),
                kind=_CODE_KIND[kind],
                campaign=campaign,
                product=product,
                outcome=AttemptOutcome(outcome),
                attempt_id=attempt_id,
            )
        )
    return out


def _list_status(dnc: Any, special: Any) -> ListStatus:
    """The mirror's answer (reasons or nil) as the engine's ``ListStatus``."""
    if dnc is None and special is None:
        return _NOT_LISTED
    return ListStatus(
        blacklisted=dnc is not None,
        blacklist_reason=_b2s(dnc) if dnc is not None else "",
        special=special is not None,
        special_reason=_b2s(special) if special is not None else "",
    )


_NOT_LISTED = ListStatus()


@dataclass(frozen=True, slots=True)
class ListedSnapshot:
    """One customer as ``RedisLedger.snapshot_listed`` read it, atomically.

    ``version`` is the compare-and-set base of the append; ``lead`` is the lead
    mirror's raw answer when one was asked for (see ``compliance.leads``), else None.
    """

    key: str
    version: str
    history: list[ContactEvent]
    lists: ListStatus
    lead: Any


# Below this many events the horizon is not worth computing: decoding is cheaper.
_HORIZON_FROM = 8


def _encode_decision(
    key: str, request: CallRequest, attempt_id: str, decision: Decision, reserved: bool
) -> str:
    return _dumps(
        {
            "n": key,
            "at": request.at.isoformat(),
            "t": utcnow().isoformat(),
            "c": request.campaign,
            "p": request.product,
            "a": attempt_id,
            "ok": decision.allowed,
            "res": reserved,
            "r": [reason_to_dict(r) for r in decision.reasons],
            "ra": decision.retry_at.isoformat() if decision.retry_at else None,
            "v": decision.policy_version,
        }
    )


def _decode_decision(raw: Any) -> DecisionRecord:
    d = json.loads(raw)
    return DecisionRecord(
        number_key=d["n"],
        at=datetime.fromisoformat(d["at"]),
        decided_at=datetime.fromisoformat(d["t"]),
        campaign=d["c"],
        product=d["p"],
        attempt_id=d["a"],
        allowed=d["ok"],
        reserved=d["res"],
        reasons=reasons_from_json(json.dumps(d["r"])),
        retry_at=datetime.fromisoformat(d["ra"]) if d["ra"] else None,
        policy_version=d["v"],
    )


def _bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


class _ScriptBatcher:
    """Sends the script calls of concurrent tasks to Redis in shared pipelines.

    One flusher task (owned by the batcher, started on first use, cancelled and
    awaited by ``close``) drains the queue: while one pipeline is on the wire,
    new calls queue up and leave together in the next one. An idle ledger pays
    no extra latency; 32 concurrent tasks pay about one round trip for many
    calls instead of one each. Scripts go as EVALSHA; when Redis has lost its
    script cache (restart, SCRIPT FLUSH) the affected calls are retried through
    ``AsyncScript``, which loads the script.

    The flusher holds one connection of the client's pool for itself (one
    pipeline at a time is all it ever sends) and writes the commands in RESP
    itself from arguments that are already bytes: redis-py's pipeline object,
    pool checkout and per-argument encoding cost more than the scripts. A
    failed or cancelled exchange disconnects that connection (redis-py does so
    on any error inside a send or read); the next flush connects again.
    """

    def __init__(self, client: aioredis.Redis, max_batch: int = 256) -> None:
        self._r = client
        self._max_batch = max_batch
        self._pending: list[tuple[AsyncScript, list[bytes], list[bytes], asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None  # redis.asyncio.Connection, taken from the pool on first flush
        self._heads: dict[str, bytes] = {}  # script sha -> "EVALSHA <sha>" in RESP

    async def call(self, script: AsyncScript, keys: list[bytes], args: list[bytes]) -> Any:
        """Run ``script`` (keys and arguments already encoded) in the next pipeline."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((script, keys, args, future))
        if self._task is None or self._task.done():
            if self._task is not None and not self._task.cancelled():
                # A flusher that died must not leave callers waiting forever: report, restart.
                error = self._task.exception()
                if error is not None:
                    log.error("Redis ledger batcher failed, restarting it", exc_info=error)
            self._task = asyncio.create_task(self._run(), name="redis-ledger-batcher")
        self._wake.set()
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for *_, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("the Redis ledger was closed"))
        self._pending.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._r.connection_pool.release(conn)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._flush(batch)

    def _packed(self, script: AsyncScript, keys: list[bytes], args: list[bytes]) -> bytes:
        head = self._heads.get(script.sha)
        if head is None:
            head = self._heads[script.sha] = _bulk(b"EVALSHA") + _bulk(script.sha.encode())
        # _bulk inlined: a dozen arguments per call, the function calls cost more than the %
        parts = [b"*%d\r\n%b%b" % (3 + len(keys) + len(args), head, _bulk(b"%d" % len(keys)))]
        parts += [b"$%d\r\n%b\r\n" % (len(k), k) for k in keys]
        parts += [b"$%d\r\n%b\r\n" % (len(a), a) for a in args]
        return b"".join(parts)

    async def _exchange(
        self, batch: list[tuple[AsyncScript, list[bytes], list[bytes], asyncio.Future[Any]]]
    ) -> list[Any]:
        """Send the batch as one pipeline; the replies in order (a script error as its value)."""
        if self._conn is None:
            pool: Any = self._r.connection_pool  # get_connection() is untyped in redis-py
            self._conn = await pool.get_connection()
        conn = self._conn
        await conn.send_packed_command(
            b"".join([self._packed(script, keys, args) for script, keys, args, _ in batch]),
            check_health=False,
        )
        results: list[Any] = []
        # One deadline for all the replies (the connection's socket timeout), not one
        # timer per reply; a timeout cancels the read and redis-py drops the connection.
        async with asyncio.timeout(conn.socket_timeout):
            for _ in batch:
                try:
                    results.append(await conn.read_response(timeout=math.inf))
                except ResponseError as exc:  # an error reply: the stream is still in step
                    results.append(exc)
        return results

    async def _flush(
        self, batch: list[tuple[AsyncScript, list[bytes], list[bytes], asyncio.Future[Any]]]
    ) -> None:
        try:
            results = await self._exchange(batch)
        except Exception as exc:  # handed to every waiting caller, which raises it
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (script, keys, args, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller was cancelled meanwhile
                continue
            if isinstance(result, NoScriptError):
                try:
                    future.set_result(await script(keys=keys, args=args))
                except Exception as exc:  # raised again by the caller
                    future.set_exception(exc)
            elif isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class RedisLedger:
    """``ContactLedger`` on Redis (one primary); see the module docstring for the keys."""

    def __init__(
        self,
        client: aioredis.Redis,
        policy: Policy,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_retries: int = 50,
        attempt_ttl_s: int = 400 * 86400,
        journal_maxlen: int = 1_000_000,
        decisions_kept: int = 200,
        own_client: bool = False,
    ) -> None:
        self._r = client
        self._policy = policy
        self._prefix = prefix
        self._max_retries = max_retries
        self._attempt_ttl_s = attempt_ttl_s
        self._journal_maxlen = journal_maxlen
        self._decisions_kept = decisions_kept
        self._own_client = own_client
        self._read = client.register_script(_READ)
        self._reserve = client.register_script(_RESERVE)
        self._resolve = client.register_script(_RESOLVE)
        self._refusal = client.register_script(_REFUSAL)
        self._logscript = client.register_script(_LOG)
        self._batcher = _ScriptBatcher(client)
        # Constant script arguments, encoded once (redis-py would encode them per call).
        self._ttl_arg = str(attempt_ttl_s).encode()
        self._maxlen_arg = str(journal_maxlen).encode()
        self._kept_arg = str(decisions_kept).encode()
        self._journal_b = self.journal_key.encode()
        self._mirror_b: dict[tuple[str, str], tuple[bytes, bytes]] = {}  # list mirror keys

    @classmethod
    def from_url(
        cls,
        url: str,
        policy: Policy,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_connections: int = 64,
        **kwargs: Any,
    ) -> RedisLedger:
        client = aioredis.Redis.from_url(url, max_connections=max_connections)
        return cls(client, policy, prefix=prefix, own_client=True, **kwargs)

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def client(self) -> aioredis.Redis:
        return self._r

    @property
    def prefix(self) -> str:
        return self._prefix

    async def close(self) -> None:
        await self._batcher.close()
        if self._own_client:
            await self._r.aclose()

    # --- keys --------------------------------------------------------------------------------

    def _ckeys(self, key: str) -> tuple[str, str, str, str]:
        base = f"{self._prefix}{{{key}}}:"
        return base + "h", base + "o", base + "v", base + "d"

    def _bkeys(self, key: str) -> tuple[bytes, bytes, bytes, bytes]:
        """``_ckeys`` encoded, for the batcher (h, o, v, d)."""
        base = f"{self._prefix}{{{key}}}:".encode()
        return base + b"h", base + b"o", base + b"v", base + b"d"

    def _attempt_key(self, attempt_id: str) -> str:
        return f"{self._prefix}attempt:{attempt_id}"

    def _decided_key(self, attempt_id: str) -> str:
        return f"{self._prefix}decided:{attempt_id}"

    @property
    def journal_key(self) -> str:
        return f"{self._prefix}journal"

    # --- decisions ---------------------------------------------------------------------------

    async def _snapshot(
        self, key: str, at: datetime | None = None
    ) -> tuple[str, list[ContactEvent]]:
        """(version, history) in one script call.

        With ``at``, attempts too old to matter to a decision at ``at`` are left out.
        """
        h, o, v, _ = self._ckeys(key)
        raw = cast(
            list[Any],
            await self._batcher.call(self._read, [h.encode(), v.encode(), o.encode()], []),
        )
        return _b2s(raw[0]), self._history(raw[1], raw[2], at)

    async def snapshot_listed(
        self,
        key: str,
        at: datetime,
        mirror_keys: tuple[str, str],
        lead: tuple[bytes, bytes, bytes] | None = None,
    ) -> ListedSnapshot:
        """The customer's history, version and list entries (and lead) in one script call.

        ``mirror_keys``: the list mirror's reason hashes on this ledger's Redis
        (``compliance.lists.RedisListMirror.reason_keys``). ``lead``: the lead
        mirror's lookup for one campaign (``compliance.leads.RedisLeadMirror.lookup``);
        its raw answer is ``ListedSnapshot.lead``. Attempts too old to matter at
        ``at`` are left out of the history.
        """
        h, o, v, _ = self._bkeys(key)
        mirror = self._mirror_b.get(mirror_keys)
        if mirror is None:
            mirror = self._mirror_b[mirror_keys] = (
                mirror_keys[0].encode(),
                mirror_keys[1].encode(),
            )
        keys = [h, v, o, *mirror]
        args = [key.encode()]
        if lead is not None:
            keys.append(lead[0])
            args += lead[1:]
        raw = cast(list[Any], await self._batcher.call(self._read, keys, args))
        return ListedSnapshot(
            key,
            _b2s(raw[0]),
            self._history(raw[1], raw[2], at),
            _list_status(raw[3], raw[4]),
            raw[5] if lead is not None else None,
        )

    def _history(
        self, events: Sequence[Any], flat_hash: Sequence[Any], at: datetime | None
    ) -> list[ContactEvent]:
        horizon_ms = None
        if at is not None and len(events) >= _HORIZON_FROM:
            horizon_ms = int(history_horizon(self._policy, at).timestamp() * 1000)
        return _decode_snapshot(events, flat_hash, horizon_ms)

    async def check(self, request: CallRequest, lists: ListStatus) -> Decision:
        return await self._check(request, lists, None)

    async def check_listed(self, request: CallRequest, mirror_keys: tuple[str, str]) -> Decision:
        """``check`` with the list status read from the Redis list mirror in the same call.

        ``mirror_keys``: the mirror's do-not-call and special reason hashes
        (``compliance.lists.RedisListMirror.reason_keys``), on this ledger's Redis.
        """
        return await self._check(request, None, mirror_keys)

    async def _check(
        self,
        request: CallRequest,
        lists: ListStatus | None,
        mirror_keys: tuple[str, str] | None,
    ) -> Decision:
        key = try_number_key(request.number, self._policy.numbers)
        history: list[ContactEvent] = []
        if key is not None:
            if mirror_keys is None:
                _, history = await self._snapshot(key, request.at)
            else:
                snap = await self.snapshot_listed(key, request.at, mirror_keys)
                history, lists = snap.history, snap.lists
        decision = decide(self._policy, request, history, lists or _NOT_LISTED)
        await self._log(key or invalid_key(request.number), request, "", decision)
        return decision

    async def check_and_reserve(
        self, request: CallRequest, *, attempt_id: str, lists: ListStatus
    ) -> Decision:
        if not attempt_id:
            raise ValueError("check_and_reserve needs a non-empty attempt_id")
        key = try_number_key(request.number, self._policy.numbers)
        if key is None:
            return await self._refuse_unparseable(request, attempt_id, lists)
        version, history = await self._snapshot(key, request.at)
        return await self._reserve_loop(request, attempt_id, key, version, history, lists)

    async def check_and_reserve_listed(
        self, request: CallRequest, *, attempt_id: str, mirror_keys: tuple[str, str]
    ) -> Decision:
        """``check_and_reserve`` with the list status read from the Redis list mirror.

        One script call reads history, version and the number's list entries; a
        second appends (compare-and-set on the version) when the call is allowed.
        """
        if not attempt_id:
            raise ValueError("check_and_reserve needs a non-empty attempt_id")
        key = try_number_key(request.number, self._policy.numbers)
        if key is None:
            return await self._refuse_unparseable(request, attempt_id, _NOT_LISTED)
        snap = await self.snapshot_listed(key, request.at, mirror_keys)
        return await self.reserve_listed(request, attempt_id=attempt_id, snapshot=snap)

    async def reserve_listed(
        self, request: CallRequest, *, attempt_id: str, snapshot: ListedSnapshot
    ) -> Decision:
        """The second half of ``check_and_reserve_listed``, on a snapshot already read.

        ``snapshot`` must come from ``snapshot_listed`` for ``request``'s number
        (read at ``request.at``), just before, as ``check_and_reserve_listed`` does:
        its version is the compare-and-set base (a history changed since costs a
        retry), its list entries and lead are taken as they were read.
        """
        if not attempt_id:
            raise ValueError("check_and_reserve needs a non-empty attempt_id")
        key = try_number_key(request.number, self._policy.numbers)
        if key != snapshot.key:
            raise ValueError("the snapshot was read for another number")
        return await self._reserve_loop(
            request, attempt_id, key, snapshot.version, snapshot.history, snapshot.lists
        )

    async def _refuse_unparseable(
        self, request: CallRequest, attempt_id: str, lists: ListStatus
    ) -> Decision:
        decision = decide(self._policy, request, [], lists)
        if decision.allowed:
            raise LedgerError("the engine allowed a call to an unparseable number")
        await self._log(invalid_key(request.number), request, attempt_id, decision)
        return decision

    async def _reserve_loop(
        self,
        request: CallRequest,
        attempt_id: str,
        key: str,
        version: str,
        history: list[ContactEvent],
        status: ListStatus,
    ) -> Decision:
        """Decide on the snapshot; if allowed, append by compare-and-set (a lost race: again)."""
        keys: list[bytes] | None = None
        encoded_event: bytes | None = None
        for _ in range(self._max_retries + 1):
            decision = decide(self._policy, request, history, status)
            if not decision.allowed:
                await self._log(key, request, attempt_id, decision)
                return decision
            if keys is None or encoded_event is None:
                keys = [*self._bkeys(key), self._attempt_key(attempt_id).encode(), self._journal_b]
                encoded_event = _encode_attempt(request, attempt_id).encode()
            result = cast(
                list[Any],
                await self._batcher.call(
                    self._reserve,
                    keys,
                    [
                        version.encode(),
                        encoded_event,
                        _encode_decision(key, request, attempt_id, decision, True).encode(),
                        self._ttl_arg,
                        key.encode(),
                        self._maxlen_arg,
                        self._kept_arg,
                    ],
                ),
            )
            outcome = int(result[0])
            if outcome == 1:
                return decision
            if outcome == -1:
                raise DuplicateAttempt(f"attempt id {attempt_id!r} was already reserved")
            # Lost the race: the script handed back the fresh snapshot; evaluate again.
            version = _b2s(result[1])
            history = self._history(result[2], result[3], request.at)
        raise LedgerContention(
            f"gave up reserving attempt {attempt_id} after {self._max_retries} lost races"
        )

    async def record_decision(
        self, request: CallRequest, decision: Decision, attempt_id: str = ""
    ) -> None:
        """Log a decision taken before the ledger was asked (e.g. an unknown campaign)."""
        key = try_number_key(request.number, self._policy.numbers) or invalid_key(request.number)
        await self._log(key, request, attempt_id, decision)

    async def resolve(self, attempt_id: str, outcome: AttemptOutcome) -> None:
        raw_key = await self._r.get(self._attempt_key(attempt_id))
        if raw_key is None:
            raise UnknownAttempt(f"no reserved attempt with id {attempt_id!r}")
        key = _b2s(raw_key)
        h, o, v, _ = self._ckeys(key)
        result = cast(
            list[Any],
            await self._resolve(
                keys=[h, o, v, self.journal_key],
                args=[attempt_id, outcome.value, key, self._journal_maxlen],
            ),
        )
        status = int(result[0])
        if status == -1:
            raise UnknownAttempt(f"no reserved attempt with id {attempt_id!r} in the history")
        if status == -2:
            check_resolution(attempt_id, AttemptOutcome(_b2s(result[1])), outcome)

    async def record_refusal(
        self, number: str, campaign: str, product: str, at: datetime, attempt_id: str = ""
    ) -> None:
        key = number_key(number, self._policy.numbers)
        h, _, v, _ = self._ckeys(key)
        event = ContactEvent(
            at=at,
            kind=ContactKind.REFUSAL,
            campaign=campaign,
            product=product,
            outcome=AttemptOutcome.ANSWERED,
            attempt_id=attempt_id,
        )
        await self._refusal(
            keys=[h, v, self.journal_key],
            args=[encode_event(event), key, self._journal_maxlen, attempt_id],
        )

    async def _log(
        self, key: str, request: CallRequest, attempt_id: str, decision: Decision
    ) -> None:
        d = self._ckeys(key)[3]
        await self._batcher.call(
            self._logscript,
            [d.encode(), self._journal_b, self._decided_key(attempt_id).encode()],
            [
                _encode_decision(key, request, attempt_id, decision, False).encode(),
                self._kept_arg,
                self._maxlen_arg,
                key.encode(),
                attempt_id.encode(),
                self._ttl_arg,
            ],
        )

    # --- reading -----------------------------------------------------------------------------

    async def history(self, number: str) -> list[ContactEvent]:
        _, history = await self._snapshot(number_key(number, self._policy.numbers))
        history.sort(key=lambda e: e.at)
        return history

    async def decisions(self, number: str) -> list[DecisionRecord]:
        key = try_number_key(number, self._policy.numbers) or invalid_key(number)
        raw = await self._r.lrange(self._ckeys(key)[3], 0, -1)
        return [_decode_decision(x) for x in raw]

    async def _attempt_customer(self, attempt_id: str) -> str | None:
        """The number key an attempt id was reserved or decided under (None: unknown/expired)."""
        if not attempt_id:
            return None
        for raw in await self._r.mget(
            [self._attempt_key(attempt_id), self._decided_key(attempt_id)]
        ):
            if raw is not None:
                return _b2s(raw)
        return None

    async def decisions_for_attempt(self, attempt_id: str) -> list[DecisionRecord]:
        """Decisions logged with ``attempt_id``, oldest first.

        Found through the customer the attempt was reserved or decided under; like
        ``decisions``, only the customer's last ``decisions_kept`` decisions are held.
        """
        key = await self._attempt_customer(attempt_id)
        if key is None:
            return []
        raw = await self._r.lrange(self._ckeys(key)[3], 0, -1)
        return [r for r in map(_decode_decision, raw) if r.attempt_id == attempt_id]

    async def history_for_attempt(self, attempt_id: str) -> list[ContactEvent]:
        """The events carrying ``attempt_id`` (its attempt, a refusal recorded on it)."""
        key = await self._attempt_customer(attempt_id)
        if key is None:
            return []
        _, history = await self._snapshot(key)
        found = [e for e in history if e.attempt_id == attempt_id]
        found.sort(key=lambda e: e.at)
        return found

    async def load_history(self, number: str, events: Sequence[ContactEvent]) -> None:
        """Seed a customer's Redis history (e.g. from SQL after a Redis loss); replaces it."""
        key = number_key(number, self._policy.numbers)
        h, o, v, _ = self._ckeys(key)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(h, o)
            for e in events:
                pipe.rpush(h, encode_event(e))
                if e.kind == ContactKind.ATTEMPT and e.attempt_id:
                    pipe.set(self._attempt_key(e.attempt_id), key, ex=self._attempt_ttl_s)
            pipe.incr(v)
            await pipe.execute()


async def replay_journal(
    ledger: RedisLedger, sink: SqlLedger, *, after: str = "0-0", count: int = 1000
) -> str:
    """Copy journal entries after stream id ``after`` into ``sink`` (a ``SqlLedger``).

    Returns the last stream id copied (store it, pass it next time). Reservations
    become RESERVED attempts (skipped when the attempt id is already there),
    resolutions and refusals are applied in order, and every decision (the
    reservations' and the refusals') is appended to the SQL decisions log
    (skipped when the same customer, decision time and attempt id is there).
    """
    client = ledger._r
    last = after
    while True:
        batch = await client.xrange(ledger.journal_key, min=f"({last}", count=count)
        if not batch:
            return last
        logged: list[DecisionRecord] = []
        for _entry_id, fields in batch:
            f = {_b2s(k): _b2s(val) for k, val in (fields or {}).items()}
            kind = f["t"]
            if kind in ("reserve", "refusal"):
                event = decode_event(f["e"], {})
                await sink.import_event(f["k"], event)
            elif kind == "resolve":
                await sink.import_resolution(f["a"], AttemptOutcome(f["o"]))
            if "d" in f:
                logged.append(_decode_decision(f["d"]))
        if logged:
            await sink.import_decisions(logged)
        last = _b2s(batch[-1][0])


async def sync_journal(
    ledger: RedisLedger, sink: SqlLedger, *, count: int = 1000
) -> tuple[str, str]:
    """Copy what the journal gained since the last sync into SQL; returns (from id, to id).

    The cursor lives in Redis (``Pjournal:cursor``) and moves only after the
    entries are in SQL, so a crash replays some entries again: attempts and
    resolutions are idempotent, a refusal reported without an attempt id would
    be counted twice. Run one sync at a time (cron, or a loop in one process).
    Entries trimmed from the stream before a sync (``journal_maxlen``) are lost
    to SQL: sync more often than the journal fills.
    """
    cursor_key = f"{ledger.prefix}journal:cursor"
    raw = await ledger._r.get(cursor_key)
    start = _b2s(raw) if raw is not None else "0-0"
    last = await replay_journal(ledger, sink, after=start, count=count)
    if last != start:
        await ledger._r.set(cursor_key, last)
    return start, last
