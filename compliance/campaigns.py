"""The campaign registry: what a campaign is allowed to do, stored in SQL.

A campaign has a name, a script (rule A.7: no script, no start; the gate
passes ``campaign_has_script``), the products it sells, the caller ID it
presents, the ring timeout (at least 15 s), its own dialling hours (on top of
the policy's calling hours), retry rules per dial outcome, a pacing method
with parameters, and a state (created, running, paused, stopped).

``CampaignSpec`` is the validated input (from a TOML file, the CLI or the HTTP
API); ``parse_campaign_spec`` names the offending key on bad input.
``CampaignStore.get`` raises ``UnknownCampaign`` for a name it does not know.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.clock import SYSTEM_CLOCK, Clock
from compliance.ledger import utcnow
from compliance.numbers import InvalidNumber, parse
from compliance.tables import campaigns as campaigns_table
from compliance.tables import reader

MIN_RING_TIMEOUT_S = 15
PACING_METHODS = ("predictive", "progressive", "ratio", "preview")
RETRY_OUTCOMES = ("no_answer", "busy", "congestion")
# Letters of any script (春季贷款 as well as spring-loans), digits, '_', '-', '.'.
_NAME_RE = re.compile(r"[^\W_][\w.-]{0,63}")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CampaignState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class CampaignError(ValueError):
    """A campaign definition or state change is not acceptable; ``key`` names the field."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class UnknownCampaign(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown campaign {name!r} (create it first: dialer campaign create)")
        self.name = name


@dataclass(frozen=True, slots=True)
class RetryRule:
    max_tries: int
    delay_s: int


@dataclass(frozen=True, slots=True)
class DialWindow:
    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class DiallingHours:
    """Weekdays (0 = Monday) and local-time windows; the policy's hours still apply on top."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    windows: tuple[DialWindow, ...] = (
        DialWindow(time(9, 0), time(12, 0)),
        DialWindow(time(14, 0), time(20, 0)),
    )

    def allows(self, local: datetime) -> bool:
        t = local.time()
        return local.weekday() in self.days and any(w.start <= t < w.end for w in self.windows)

    def __str__(self) -> str:
        days = ",".join(_DAYS[d] for d in self.days)
        return f"{days} {' '.join(str(w) for w in self.windows)}"


def _default_retry() -> dict[str, RetryRule]:
    return {
        "no_answer": RetryRule(3, 3600),
        "busy": RetryRule(3, 900),
        "congestion": RetryRule(2, 1800),
    }


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    name: str
    script: str
    products: tuple[str, ...]
    caller_id: str
    ring_timeout: int = 25
    hours: DiallingHours = field(default_factory=DiallingHours)
    retry: Mapping[str, RetryRule] = field(default_factory=_default_retry)
    pacing_method: str = "progressive"
    pacing_params: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Campaign:
    spec: CampaignSpec
    state: CampaignState
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def has_script(self) -> bool:
        return bool(self.spec.script.strip())

    @property
    def caller_id(self) -> str:
        return self.spec.caller_id

    @property
    def products(self) -> tuple[str, ...]:
        return self.spec.products


# --- validation -----------------------------------------------------------------------------


def _req(data: Mapping[str, Any], key: str, kind: type, prefix: str = "") -> Any:
    if key not in data:
        raise CampaignError(f"{prefix}{key}: required", prefix + key)
    value = data[key]
    if kind is int and isinstance(value, bool):
        raise CampaignError(f"{prefix}{key}: expected an integer", prefix + key)
    if not isinstance(value, kind):
        raise CampaignError(f"{prefix}{key}: expected {kind.__name__}", prefix + key)
    return value


def _parse_time(text: Any, key: str) -> time:
    if not isinstance(text, str):
        raise CampaignError(f"{key}: expected a time like '09:00'", key)
    try:
        hh, mm = text.split(":")
        if text == "24:00":
            return time(23, 59, 59)
        return time(int(hh), int(mm))
    except ValueError as exc:
        raise CampaignError(f"{key}: {text!r} is not a time like '09:00'", key) from exc


def _parse_hours(data: Any) -> DiallingHours:
    if data is None:
        return DiallingHours()
    if not isinstance(data, Mapping):
        raise CampaignError("hours: expected a table with days and windows", "hours")
    days_raw = data.get("days", list(_DAYS[:6]))
    if not isinstance(days_raw, list) or not days_raw:
        raise CampaignError("hours.days: expected a list like ['mon', 'tue']", "hours.days")
    days = []
    for d in days_raw:
        if not isinstance(d, str) or d.lower()[:3] not in _DAYS:
            raise CampaignError(f"hours.days: {d!r} is not a weekday (mon..sun)", "hours.days")
        days.append(_DAYS.index(d.lower()[:3]))
    windows_raw = data.get("windows", ["09:00-12:00", "14:00-20:00"])
    if not isinstance(windows_raw, list) or not windows_raw:
        raise CampaignError("hours.windows: expected a list like ['09:00-12:00']", "hours.windows")
    windows = []
    for w in windows_raw:
        if not isinstance(w, str) or w.count("-") != 1:
            raise CampaignError(f"hours.windows: {w!r} is not like '09:00-12:00'", "hours.windows")
        a, b = w.split("-")
        start, end = (
            _parse_time(a.strip(), "hours.windows"),
            _parse_time(b.strip(), "hours.windows"),
        )
        if end <= start:
            raise CampaignError(f"hours.windows: {w!r} ends before it starts", "hours.windows")
        windows.append(DialWindow(start, end))
    return DiallingHours(tuple(sorted(set(days))), tuple(windows))


def _parse_retry(data: Any) -> dict[str, RetryRule]:
    rules = _default_retry()
    if data is None:
        return rules
    if not isinstance(data, Mapping):
        raise CampaignError("retry: expected a table per outcome", "retry")
    for outcome, rule in data.items():
        key = f"retry.{outcome}"
        if outcome not in RETRY_OUTCOMES:
            raise CampaignError(f"{key}: unknown outcome (known: {', '.join(RETRY_OUTCOMES)})", key)
        if not isinstance(rule, Mapping):
            raise CampaignError(f"{key}: expected max_tries and delay_s", key)
        max_tries = _req(rule, "max_tries", int, key + ".")
        delay_s = _req(rule, "delay_s", int, key + ".")
        if not 0 <= max_tries <= 20:
            raise CampaignError(f"{key}.max_tries: {max_tries} outside 0..20", key + ".max_tries")
        if delay_s < 60:
            raise CampaignError(f"{key}.delay_s: {delay_s} s is under 60 s", key + ".delay_s")
        rules[outcome] = RetryRule(max_tries, delay_s)
    return rules


def parse_campaign_spec(data: Mapping[str, Any]) -> CampaignSpec:
    """Validate a campaign definition (TOML table or JSON object); errors name the key."""
    known = {
        "name",
        "script",
        "script_file",
        "products",
        "caller_id",
        "ring_timeout",
        "hours",
        "retry",
        "pacing",
    }
    for key in data:
        if key not in known:
            raise CampaignError(f"{key}: unknown key (known: {', '.join(sorted(known))})", key)
    name = unicodedata.normalize("NFC", _req(data, "name", str))
    if not _NAME_RE.fullmatch(name):
        raise CampaignError(
            f"name: {name!r} must be 1-64 letters (any script), digits, '_', '-' or '.', "
            "starting with a letter or digit",
            "name",
        )
    script = data.get("script", "")
    if not isinstance(script, str):
        raise CampaignError("script: expected text", "script")
    products = _req(data, "products", list)
    if not products or not all(isinstance(p, str) and p.strip() for p in products):
        raise CampaignError("products: expected a non-empty list of product names", "products")
    caller_id = _req(data, "caller_id", str)
    try:
        caller_key = parse(caller_id).key
    except InvalidNumber as exc:
        raise CampaignError(f"caller_id: {exc}", "caller_id") from exc
    ring_timeout = data.get("ring_timeout", 25)
    if isinstance(ring_timeout, bool) or not isinstance(ring_timeout, int):
        raise CampaignError("ring_timeout: expected whole seconds", "ring_timeout")
    if not MIN_RING_TIMEOUT_S <= ring_timeout <= 120:
        raise CampaignError(
            f"ring_timeout: {ring_timeout} s outside {MIN_RING_TIMEOUT_S}..120 s "
            "(a customer phone rings at least 15 s)",
            "ring_timeout",
        )
    pacing = data.get("pacing", {})
    if not isinstance(pacing, Mapping):
        raise CampaignError("pacing: expected a table with method and parameters", "pacing")
    method = pacing.get("method", "progressive")
    if method not in PACING_METHODS:
        raise CampaignError(
            f"pacing.method: {method!r} is not one of {', '.join(PACING_METHODS)}", "pacing.method"
        )
    params: dict[str, float] = {}
    for k, v in pacing.items():
        if k == "method":
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise CampaignError(f"pacing.{k}: expected a number", f"pacing.{k}")
        params[k] = float(v)
    return CampaignSpec(
        name=name,
        script=script,
        products=tuple(p.strip() for p in products),
        caller_id=caller_key,
        ring_timeout=ring_timeout,
        hours=_parse_hours(data.get("hours")),
        retry=_parse_retry(data.get("retry")),
        pacing_method=method,
        pacing_params=params,
    )


def load_campaign_file(path: str | Path) -> CampaignSpec:
    """A campaign from a TOML file; ``script_file`` is read relative to the file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CampaignError(f"{p}: {exc.strerror or exc}", "file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{p}: not valid TOML: {exc}", "file") from exc
    if "script_file" in data:
        script_path = p.parent / str(data.pop("script_file"))
        try:
            data["script"] = script_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CampaignError(
                f"{p}: script_file {script_path}: {exc.strerror}", "script_file"
            ) from exc
    try:
        return parse_campaign_spec(data)
    except CampaignError as exc:
        raise CampaignError(f"{p}: {exc}", exc.key) from exc


def spec_to_dict(spec: CampaignSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "script": spec.script,
        "products": list(spec.products),
        "caller_id": spec.caller_id,
        "ring_timeout": spec.ring_timeout,
        "hours": {
            "days": [_DAYS[d] for d in spec.hours.days],
            "windows": [str(w) for w in spec.hours.windows],
        },
        "retry": {
            k: {"max_tries": r.max_tries, "delay_s": r.delay_s} for k, r in spec.retry.items()
        },
        "pacing": {"method": spec.pacing_method, **spec.pacing_params},
    }


# --- store ----------------------------------------------------------------------------------


_MISS: tuple[bool, Campaign | None] = (False, None)


class CampaignStore:
    """Campaigns in SQL (table ``campaigns``).

    ``find_cached`` serves the gate's per-call lookups from memory: an entry is
    trusted for ``cache_ttl`` seconds (default 1 s). Changes made through this
    store (``create``, ``set_state``) drop the entry at once, so this process sees
    them on its next call; a change made by another process (the CLI, another
    dialer host) is seen within ``cache_ttl``.
    """

    def __init__(
        self, engine: AsyncEngine, *, cache_ttl: float = 1.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._reader = reader(engine)
        self._cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, Campaign | None]] = {}

    def peek_cached(self, name: str) -> tuple[bool, Campaign | None]:
        """``find_cached`` without I/O: ``(True, campaign or None)`` when memory answers.

        ``(False, None)`` when the entry is missing or older than ``cache_ttl``:
        then ask ``find_cached``. Lets a hot caller skip a coroutine (and the
        gate its single-flight bookkeeping) on the common, cached path.
        """
        hit = self._cache.get(name)
        if hit is not None and hit[0] > self._clock.now():
            return True, hit[1]
        return _MISS

    def peek_recent(self, name: str, within: float) -> tuple[bool, Campaign | None]:
        """Like ``peek_cached``, but also an expired entry read less than ``within`` s ago."""
        hit = self._cache.get(name)
        if hit is not None and hit[0] - self._cache_ttl + within > self._clock.now():
            return True, hit[1]
        return _MISS

    async def find_cached(self, name: str) -> Campaign | None:
        """``find``, answered from memory when looked up less than ``cache_ttl`` s ago."""
        hit = self._cache.get(name)
        now = self._clock.now()
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await self.find(name)
        if len(self._cache) >= 10_000:  # names come from callers (AGI arguments): bound it
            self._cache.clear()
        self._cache[name] = (now + self._cache_ttl, found)
        return found

    def invalidate(self, name: str | None = None) -> None:
        """Forget the cached campaign ``name`` (every campaign when None)."""
        if name is None:
            self._cache.clear()
        else:
            self._cache.pop(name, None)

    async def create(self, spec: CampaignSpec) -> Campaign:
        now = utcnow()
        d = spec_to_dict(spec)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    campaigns_table.insert().values(
                        name=spec.name,
                        script=spec.script,
                        products=json.dumps(d["products"]),
                        caller_id=spec.caller_id,
                        ring_timeout=spec.ring_timeout,
                        hours=json.dumps(d["hours"]),
                        retry=json.dumps(d["retry"]),
                        pacing_method=spec.pacing_method,
                        pacing_params=json.dumps(dict(spec.pacing_params)),
                        state=CampaignState.CREATED.value,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError as exc:
            raise CampaignError(f"campaign {spec.name!r} already exists", "name") from exc
        finally:
            self.invalidate(spec.name)
        return Campaign(spec, CampaignState.CREATED, now, now)

    async def find(self, name: str) -> Campaign | None:
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(select(campaigns_table).where(campaigns_table.c.name == name))
            ).first()
        return None if row is None else _from_row(row)

    async def get(self, name: str) -> Campaign:
        campaign = await self.find(name)
        if campaign is None:
            raise UnknownCampaign(name)
        return campaign

    async def list_all(self) -> list[Campaign]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(select(campaigns_table).order_by(campaigns_table.c.name))
            ).all()
        return [_from_row(r) for r in rows]

    async def set_state(self, name: str, state: CampaignState) -> Campaign:
        """Change the state; starting a campaign without a script is refused (A.7)."""
        try:
            return await self._set_state(name, state)
        finally:
            self.invalidate(name)

    async def _set_state(self, name: str, state: CampaignState) -> Campaign:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(select(campaigns_table).where(campaigns_table.c.name == name))
            ).first()
            if row is None:
                raise UnknownCampaign(name)
            campaign = _from_row(row)
            if state == CampaignState.RUNNING and not campaign.has_script:
                raise CampaignError(
                    f"campaign {name!r} has no script and cannot start (rule A.7)", "script"
                )
            if campaign.state == CampaignState.STOPPED and state != CampaignState.STOPPED:
                raise CampaignError(f"campaign {name!r} is stopped for good", "state")
            now = utcnow()
            await conn.execute(
                campaigns_table.update()
                .where(campaigns_table.c.name == name)
                .values(state=state.value, updated_at=now)
            )
        return replace(campaign, state=state, updated_at=now)


def _from_row(row: Any) -> Campaign:
    data = {
        "name": row.name,
        "script": row.script,
        "products": json.loads(row.products),
        "caller_id": row.caller_id,
        "ring_timeout": row.ring_timeout,
        "hours": json.loads(row.hours),
        "retry": json.loads(row.retry),
        "pacing": {"method": row.pacing_method, **json.loads(row.pacing_params)},
    }
    return Campaign(
        parse_campaign_spec(data), CampaignState(row.state), row.created_at, row.updated_at
    )
