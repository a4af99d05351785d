"""Desk-phone use cases: check a call before it is dialled, rate it when it ends, bill a month.

Glue between the pure rules (``desk_rules``), the administrator's file
(``desk_config``) and storage (``desk_store``). A short-lived in-process cache
holds each extension's active grants and month spend, so a check costs no SQL
round trip on the hot path: a grant added from the CLI (another process)
takes effect within ``cache_ttl_s``; a call rated by this process updates the
cache at once. A stale entry is still served for up to ``stale_s`` while one
refresh runs beside it, so a refresh never stalls the sessions behind it; a
refresh that fails is logged, and once the entry is older than both the
sessions wait for (and fail closed on) a fresh load. The quota is checked
against calls already rated, so the spend is always one call behind anyway
(rules.md E: the call that crosses the quota is allowed, the next one is not).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from agi_scripts.desk_config import DeskConfig
from agi_scripts.desk_rules import DeskDecision, DeskReason, Grant, decide
from agi_scripts.desk_store import DeskStore, RatedCall
from compliance.clock import SYSTEM_CLOCK, utcnow
from compliance.numbers import InvalidNumber, NumberKind, PhoneNumber

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _State:
    grants: tuple[Grant, ...]
    spend_fen: int
    loaded_at: float


@dataclass(frozen=True, slots=True)
class RateResult:
    cost_fen: int
    recorded: bool  # False: this call id had already been rated
    kind: NumberKind


class DeskService:
    """Check, rate and bill desk-phone calls."""

    def __init__(
        self,
        config: DeskConfig,
        store: DeskStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        cache_ttl_s: float = 2.0,
        stale_s: float = 10.0,
        ticks: Callable[[], float] = SYSTEM_CLOCK.now,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.ticks = ticks  # monotonic seconds, for the cache's age
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[tuple[str, str], _State] = {}
        self.stale_s = stale_s
        self._tz = config.tz
        self._loads: dict[tuple[str, str], asyncio.Task[_State]] = {}

    def month_of(self, at: datetime) -> str:
        local = at.astimezone(self._tz)
        return f"{local.year:04d}-{local.month:02d}"

    def parse(self, raw: str) -> PhoneNumber | None:
        try:
            return self.config.plan.parse(raw)
        except InvalidNumber:
            return None

    async def _state(self, extension: str, at: datetime) -> _State:
        key = (extension, self.month_of(at))
        state = self._cache.get(key)
        age = self.ticks() - state.loaded_at if state is not None else float("inf")
        if state is not None and age < self.cache_ttl_s:
            return state
        task = self._loads.get(key)
        if task is None:
            # one load per key at a time: 200 sessions of one extension cost one query
            task = asyncio.get_running_loop().create_task(self._load(key, at))
            self._loads[key] = task
            task.add_done_callback(functools.partial(self._load_done, key))
        if state is not None and age < self.cache_ttl_s + self.stale_s:
            # stale-while-revalidate: answer now, the refresh runs beside (no stall in p99)
            return state
        return await asyncio.shield(task)

    async def _load(self, key: tuple[str, str], at: datetime) -> _State:
        grants = await self.store.grants(key[0], active_at=at)
        spend = await self.store.month_spend(key[0], key[1])
        state = _State(tuple(grants), spend, self.ticks())
        self._cache[key] = state
        return state

    def _load_done(self, key: tuple[str, str], task: asyncio.Task[_State]) -> None:
        if self._loads.get(key) is task:
            del self._loads[key]
        if not task.cancelled() and (exc := task.exception()) is not None:
            # waiters got it through their await; a background refresh only logs it
            logger.warning(
                "desk state load failed extension=%s error=%s", key[0], exc.__class__.__name__
            )

    async def aclose(self) -> None:
        """Cancel and await state loads still running (at shutdown)."""
        tasks = list(self._loads.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def invalidate(self, extension: str | None = None) -> None:
        """Forget cached state (all, or one extension's): after a grant change."""
        if extension is None:
            self._cache.clear()
        else:
            for key in [k for k in self._cache if k[0] == extension]:
                del self._cache[key]

    async def check(self, extension: str, raw_number: str) -> DeskDecision:
        """Decide a call from ``extension`` to ``raw_number`` now."""
        at = self.clock()
        number = self.parse(raw_number)
        cls = self.config.class_of(extension)
        if number is None or number.kind in (NumberKind.EMERGENCY, NumberKind.INTERNAL):
            # no storage needed: an emergency call must not depend on the database
            return decide(
                cls,
                number,
                (),
                0,
                self.config.quota_of(extension),
                self.config.tariff,
                at=at,
                policy=self.config.policy,
            )
        state = await self._state(extension, at)
        return decide(
            cls,
            number,
            state.grants,
            state.spend_fen,
            self.config.quota_of(extension),
            self.config.tariff,
            at=at,
            policy=self.config.policy,
        )

    async def rate(self, call_id: str, extension: str, raw_number: str, billsec: int) -> RateResult:
        """Rate a finished call and store it (idempotent per ``call_id``)."""
        at = self.clock()
        number = self.parse(raw_number)
        if number is None:
            raise InvalidNumber("the dialled number of a rated call does not parse")
        dial = number.dial_string
        if number.kind is NumberKind.DOMESTIC_LONG_DISTANCE:
            dial = self.config.policy.long_distance_prefix + dial
        cost = self.config.tariff.cost_fen(number.kind, max(0, billsec))
        if number.kind in (NumberKind.EMERGENCY, NumberKind.INTERNAL):
            cost = 0
        month = self.month_of(at)
        recorded = await self.store.record_call(
            RatedCall(
                call_id=call_id,
                extension=extension,
                month=month,
                ended_at=at,
                number_key=number.key,
                kind=number.kind.value,
                dial=dial,
                billsec=max(0, billsec),
                cost_fen=cost,
            )
        )
        key = (extension, month)
        state = self._cache.get(key)
        if recorded and state is not None:
            self._cache[key] = _State(state.grants, state.spend_fen + cost, state.loaded_at)
        return RateResult(cost, recorded, number.kind)

    async def add_grant(
        self,
        extension: str,
        requester: str,
        approvers: list[str],
        starts_at: datetime,
        expires_at: datetime,
        reason: str = "",
    ) -> Grant:
        grant = await self.store.add_grant(
            extension,
            requester,
            approvers,
            starts_at,
            expires_at,
            reason=reason,
            created_at=self.clock(),
            min_approvers=self.config.grant_min_approvers,
        )
        self.invalidate(extension)
        return grant

    async def revoke_grant(self, grant_id: int, by: str) -> Grant:
        grant = await self.store.revoke_grant(grant_id, by=by, at=self.clock())
        self.invalidate(grant.extension)
        return grant


__all__ = ["DeskReason", "DeskService", "RateResult"]
