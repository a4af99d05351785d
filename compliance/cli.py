"""``dialer`` subcommands of the compliance side: check, dnc, leads, campaign, policy, sample-run.

Options every one of these subcommands takes:
  --db URL        SQL database (env DIALER_DB_URL; default sqlite file var/dialer.sqlite3
                  under the current directory, created with its tables on first use)
  --policy FILE   policy file (env DIALER_POLICY; default: the packaged default policy)
  --redis URL     use the Redis ledger and list mirror (env DIALER_REDIS_URL; default: SQL only)
  --redis-prefix P  prefix of every Redis key (env DIALER_REDIS_PREFIX; default "dialer:")
  --json          machine-readable output

Phone numbers are masked in every human-readable line. Exit codes are those of
``compliance.console``: 0 ok / allowed, 1 refused, 2 bad input, 3 service unreachable.
This module handles its own errors (it does not import ``dialer``: the
compliance package depends on nothing above it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, OperationalError

from compliance.campaigns import (
    Campaign,
    CampaignError,
    UnknownCampaign,
    load_campaign_file,
    spec_to_dict,
)
from compliance.console import EXIT_BAD_INPUT, EXIT_NO, EXIT_OK, EXIT_UNAVAILABLE
from compliance.gate import ComplianceStores, open_compliance
from compliance.leads import LeadStatus
from compliance.ledger import DuplicateAttempt, decision_to_dict, utcnow
from compliance.lists import ImportFailed, ListKind, ListReason
from compliance.model import CallRequest, Decision
from compliance.numbers import InvalidNumber, mask
from compliance.policy import (
    Policy,
    PolicyError,
    default_policy,
    load_policy,
    policy_to_dict,
)
from compliance.redis_ledger import RedisLedger, sync_journal
from compliance.sql_ledger import SqlLedger

Handler = Callable[[argparse.Namespace], Awaitable[int]]

_BAD_INPUT = (
    InvalidNumber,
    ImportFailed,
    PolicyError,
    CampaignError,
    UnknownCampaign,
    DuplicateAttempt,
    ValueError,
)


class _Fail(Exception):
    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _guard(name: str, fn: Handler) -> Handler:
    async def run(args: argparse.Namespace) -> int:
        try:
            return await fn(args)
        except _Fail as exc:
            print(f"dialer {name}: error: {exc}", file=sys.stderr)
            return exc.code
        except _BAD_INPUT as exc:
            print(f"dialer {name}: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except (OperationalError, DBAPIError, RedisConnectionError, OSError) as exc:
            print(f"dialer {name}: error: service unavailable: {_short(exc)}", file=sys.stderr)
            return EXIT_UNAVAILABLE

    return run


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


# --- configuration --------------------------------------------------------------------------


def db_url(args: argparse.Namespace) -> str:
    if args.db:
        return str(args.db)
    env = os.environ.get("DIALER_DB_URL")
    if env:
        return env
    return f"sqlite+aiosqlite:///{Path.cwd() / 'var' / 'dialer.sqlite3'}"


def policy_of(args: argparse.Namespace) -> Policy:
    path = args.policy or os.environ.get("DIALER_POLICY")
    return load_policy(path) if path else default_policy()


async def _open(args: argparse.Namespace, policy: Policy | None = None) -> ComplianceStores:
    redis_url = args.redis or os.environ.get("DIALER_REDIS_URL") or None
    prefix = args.redis_prefix or os.environ.get("DIALER_REDIS_PREFIX") or "dialer:"
    return await open_compliance(
        db_url(args), policy or policy_of(args), redis_url=redis_url, redis_prefix=prefix
    )


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", metavar="URL", help="database URL (env DIALER_DB_URL)")
    p.add_argument("--policy", metavar="FILE", help="policy file (env DIALER_POLICY)")
    p.add_argument("--redis", metavar="URL", help="Redis for the ledger (env DIALER_REDIS_URL)")
    p.add_argument(
        "--redis-prefix",
        metavar="P",
        dest="redis_prefix",
        help="Redis key prefix (env DIALER_REDIS_PREFIX, default 'dialer:')",
    )
    p.add_argument("--json", action="store_true", help="JSON output for scripts")
    return p


def _emit(args: argparse.Namespace, data: Any, human: str) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(human)


def parse_at(text: str | None, policy: Policy) -> datetime:
    if not text:
        return utcnow()
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Fail(f"--at {text!r}: not an ISO 8601 time like 2026-11-02T10:30") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=policy.tz)


# --- check ----------------------------------------------------------------------------------


def _local(at: datetime, tz: tzinfo | None) -> str:
    """A time as people there read it: in the policy's zone, to the minute."""
    return (at.astimezone(tz) if tz is not None else at).isoformat(timespec="minutes")


def format_decision(
    number: str, campaign: str, product: str, decision: Decision, tz: tzinfo | None = None
) -> str:
    verdict = "ALLOWED" if decision.allowed else "REFUSED"
    lines = [
        f"{mask(number)}  campaign={campaign} product={product}: {verdict} "
        f"(policy {decision.policy_version})"
    ]
    for r in decision.reasons:
        retry = f" (retry at {_local(r.retry_at, tz)})" if r.retry_at else ""
        lines.append(f"  - {r.code.value} [{r.rule}]: {r.message}{retry}")
    if not decision.allowed:
        lines.append(
            f"  earliest retry: {_local(decision.retry_at, tz)}"
            if decision.retry_at
            else "  earliest retry: never (not without a change of lists, lead or policy)"
        )
    return "\n".join(lines)


async def cmd_check(args: argparse.Namespace) -> int:
    policy = policy_of(args)
    at = parse_at(args.at, policy)
    if args.dialled and not args.callback:
        raise _Fail("--dialled is only meaningful with --callback")
    for what, value in (
        ("NUMBER", args.number),
        ("--caller-id", args.caller_id),
        ("--dialled", args.dialled),
    ):
        if value is not None:
            try:
                policy.numbers.parse(value)
            except InvalidNumber as exc:
                raise _Fail(f"{what}: {exc}") from exc
    stores = await _open(args, policy)
    try:
        campaign = await stores.campaigns.get(args.campaign)
        product = args.product or campaign.products[0]
        common: dict[str, Any] = {
            "caller_id": args.caller_id,
            "is_callback": args.callback,
            "dialled_number": args.dialled,
        }
        if args.reserve:
            decision = await stores.gate.check_and_reserve(
                args.number, args.campaign, product, at, attempt_id=args.reserve, **common
            )
        else:
            decision = await stores.gate.check(args.number, args.campaign, product, at, **common)
    finally:
        await stores.close()
    data = {
        "number": mask(args.number),
        "campaign": args.campaign,
        "product": product,
        "at": at.isoformat(),
        "reserved": bool(args.reserve and decision.allowed),
        **decision_to_dict(decision),
    }
    _emit(args, data, format_decision(args.number, args.campaign, product, decision, policy.tz))
    return EXIT_OK if decision.allowed else EXIT_NO


# --- dnc ------------------------------------------------------------------------------------


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor or os.environ.get("USER") or "cli")


async def cmd_dnc_add(args: argparse.Namespace) -> int:
    stores = await _open(args)
    try:
        entry = await stores.lists.add(
            args.number,
            ListReason(args.reason),
            source=args.source,
            actor=_actor(args),
            note=args.note,
        )
    finally:
        await stores.close()
    _emit(
        args,
        {"number": entry.masked, "list": entry.kind.value, "reason": entry.reason.value},
        f"{entry.masked} is on the {entry.kind.value} list ({entry.reason.value})",
    )
    return EXIT_OK


async def cmd_dnc_remove(args: argparse.Namespace) -> int:
    stores = await _open(args)
    try:
        removed = await stores.lists.remove(
            args.number,
            source=args.source,
            actor=_actor(args),
            kind=ListKind(args.list) if args.list else None,
            note=args.note,
        )
    finally:
        await stores.close()
    _emit(
        args,
        {"number": mask(args.number), "removed": removed},
        f"{mask(args.number)}: {removed} list entr{'y' if removed == 1 else 'ies'} removed",
    )
    return EXIT_OK if removed else EXIT_NO


async def cmd_dnc_list(args: argparse.Namespace) -> int:
    stores = await _open(args)
    try:
        entries = await stores.lists.entries(ListKind(args.list) if args.list else None)
    finally:
        await stores.close()
    data = [
        {
            "number": e.masked,
            "list": e.kind.value,
            "reason": e.reason.value,
            "source": e.source,
            "actor": e.actor,
            "added_at": e.added_at.isoformat(),
            "note": e.note,
        }
        for e in entries
    ]
    human = (
        "\n".join(
            f"{e.masked:<14} {e.kind.value:<8} {e.reason.value:<15} {e.added_at:%Y-%m-%d %H:%M} "
            f"by {e.actor} from {e.source}"
            for e in entries
        )
        or "(no entries)"
    )
    _emit(args, data, human)
    return EXIT_OK


async def cmd_dnc_import(args: argparse.Namespace) -> int:
    stores = await _open(args)
    try:
        report = await stores.lists.import_csv(
            args.file,
            actor=_actor(args),
            default_reason=ListReason(args.reason) if args.reason else None,
            source=args.source or None,
        )
    finally:
        await stores.close()
    _emit(
        args,
        _asdict(report),
        f"{args.file}: {report.rows} rows, {report.added} added, {report.updated} updated, "
        f"{report.duplicates} duplicate rows merged",
    )
    return EXIT_OK


async def cmd_dnc_audit(args: argparse.Namespace) -> int:
    stores = await _open(args)
    try:
        rows = await stores.lists.audit(args.number)
    finally:
        await stores.close()
    data = [
        {
            "id": a.id,
            "at": a.at.isoformat(),
            "action": a.action,
            "number": mask(a.number_key) if a.number_key else "",
            "list": a.kind,
            "reason": a.reason,
            "source": a.source,
            "actor": a.actor,
            "detail": a.detail,
        }
        for a in rows
    ]
    human = (
        "\n".join(
            f"{a.at:%Y-%m-%d %H:%M:%S} {a.action:<13} {mask(a.number_key) or '-':<14} "
            f"{a.kind or '-':<8} {a.reason or '-':<15} by {a.actor}: {a.detail}"
            for a in rows
        )
        or "(no audit entries)"
    )
    _emit(args, data, human)
    return EXIT_OK


def _asdict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


# --- leads ----------------------------------------------------------------------------------


async def cmd_leads_import(args: argparse.Namespace) -> int:
    policy = policy_of(args)
    stores = await _open(args, policy)
    try:
        report = await stores.leads.import_csv(
            args.file, args.campaign, tz=policy.tz, list_name=args.list_name
        )
    finally:
        await stores.close()
    data = {**_asdict(report), "duplicates_merged": report.duplicates_merged}
    _emit(
        args,
        data,
        f"{args.file} -> campaign {args.campaign}: {report.rows} rows, {report.created} leads "
        f"created, {report.duplicates_merged} duplicates merged "
        f"({report.merged_in_file} within the file, {report.merged_existing} with leads "
        "already in the campaign)",
    )
    return EXIT_OK


async def cmd_leads_list(args: argparse.Namespace) -> int:
    stores = await _open(args)
    try:
        await stores.campaigns.get(args.campaign)
        leads = await stores.leads.list_leads(
            args.campaign, LeadStatus(args.status) if args.status else None
        )
    finally:
        await stores.close()
    data = [
        {
            "id": x.id,
            "number": x.masked,
            "name": x.name,
            "segment": x.segment,
            "product": x.product,
            "status": x.status.value,
            "attempts": x.attempts,
            "assigned_at": x.assigned_at.isoformat(),
            "next_attempt_at": x.next_attempt_at.isoformat() if x.next_attempt_at else None,
        }
        for x in leads
    ]
    human = (
        "\n".join(
            f"{x.id:>5} {x.masked:<14} {x.status.value:<12} {x.segment:<14} {x.product:<12} "
            f"{x.name}"
            for x in leads
        )
        or "(no leads)"
    )
    _emit(args, data, human)
    return EXIT_OK


# --- campaign -------------------------------------------------------------------------------


def _campaign_dict(c: Campaign) -> dict[str, Any]:
    d = spec_to_dict(c.spec)
    d["caller_id"] = c.spec.caller_id  # a company number, shown in full
    return {
        **d,
        "state": c.state.value,
        "has_script": c.has_script,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
    }


async def cmd_campaign_create(args: argparse.Namespace) -> int:
    spec = load_campaign_file(args.file)
    stores = await _open(args)
    try:
        campaign = await stores.campaigns.create(spec)
    finally:
        await stores.close()
    warn = "" if campaign.has_script else " (no script: it cannot start until one is set)"
    _emit(args, _campaign_dict(campaign), f"campaign {campaign.name} created{warn}")
    return EXIT_OK


async def cmd_campaign_list(args: argparse.Namespace) -> int:
    stores = await _open(args)
    try:
        found = await stores.campaigns.list_all()
    finally:
        await stores.close()
    human = (
        "\n".join(
            f"{c.name:<24} {c.state.value:<8} products={','.join(c.products)} "
            f"script={'yes' if c.has_script else 'NO'}"
            for c in found
        )
        or "(no campaigns)"
    )
    _emit(args, [_campaign_dict(c) for c in found], human)
    return EXIT_OK


async def cmd_campaign_show(args: argparse.Namespace) -> int:
    stores = await _open(args)
    try:
        c = await stores.campaigns.get(args.name)
        counts = await stores.leads.counts(c.name)
    finally:
        await stores.close()
    data = {**_campaign_dict(c), "leads": counts}
    retry = ", ".join(
        f"{k}: {r.max_tries} tries every {r.delay_s}s" for k, r in c.spec.retry.items()
    )
    human = "\n".join(
        [
            f"campaign {c.name} ({c.state.value})",
            f"  products:     {', '.join(c.products)}",
            f"  caller id:    {c.caller_id}",
            f"  ring timeout: {c.spec.ring_timeout} s",
            f"  hours:        {c.spec.hours}",
            f"  retry:        {retry}",
            f"  pacing:       {c.spec.pacing_method} {dict(c.spec.pacing_params) or ''}",
            f"  script:       {len(c.spec.script)} characters"
            if c.has_script
            else "  script:       NONE (cannot start)",
            f"  leads:        {counts or 'none'}",
        ]
    )
    _emit(args, data, human)
    return EXIT_OK


# --- policy ---------------------------------------------------------------------------------


async def cmd_policy_show(args: argparse.Namespace) -> int:
    policy = policy_of(args)
    data = policy_to_dict(policy)
    _emit(args, data, json.dumps(data, ensure_ascii=False, indent=2))
    return EXIT_OK


async def cmd_policy_validate(args: argparse.Namespace) -> int:
    path = args.file or args.policy or os.environ.get("DIALER_POLICY")
    policy = load_policy(path) if path else default_policy()
    _emit(
        args,
        {"valid": True, "version": policy.version, "source": policy.source},
        f"{policy.source}: valid, version {policy.version}",
    )
    return EXIT_OK


# --- ledger -------------------------------------------------------------------------------


async def cmd_ledger_history(args: argparse.Namespace) -> int:
    policy = policy_of(args)
    try:
        policy.numbers.parse(args.number)
    except InvalidNumber as exc:
        raise _Fail(f"NUMBER: {exc}") from exc
    stores = await _open(args, policy)
    try:
        events = await stores.ledger.history(args.number)
        logged = await stores.ledger.decisions(args.number)
    finally:
        await stores.close()
    data = {
        "number": mask(args.number),
        "history": [
            {
                "at": e.at.isoformat(),
                "kind": e.kind.value,
                "campaign": e.campaign,
                "product": e.product,
                "outcome": e.outcome.value,
                "attempt_id": e.attempt_id,
            }
            for e in events
        ],
        "decisions": [
            {
                "at": d.at.isoformat(),
                "decided_at": d.decided_at.isoformat(),
                "campaign": d.campaign,
                "product": d.product,
                "attempt_id": d.attempt_id,
                "allowed": d.allowed,
                "reserved": d.reserved,
                "codes": [c.value for c in d.codes],
                "policy_version": d.policy_version,
            }
            for d in logged
        ],
    }
    lines = [f"{mask(args.number)}: {len(events)} contact events, {len(logged)} decisions"]
    lines += [
        f"  {e.at.astimezone(policy.tz):%Y-%m-%d %H:%M} {e.kind.value:<8} {e.outcome.value:<10} "
        f"{e.campaign}/{e.product} {e.attempt_id}"
        for e in events
    ]
    lines += [
        f"  decided {d.decided_at.astimezone(policy.tz):%Y-%m-%d %H:%M:%S} "
        f"{'allowed' if d.allowed else 'refused'}{' +reserved' if d.reserved else ''} "
        f"{d.campaign}/{d.product} {','.join(c.value for c in d.codes)} "
        f"(policy {d.policy_version})"
        for d in logged
    ]
    _emit(args, data, "\n".join(lines))
    return EXIT_OK


async def cmd_ledger_sync(args: argparse.Namespace) -> int:
    redis_url = args.redis or os.environ.get("DIALER_REDIS_URL")
    if not redis_url:
        raise _Fail("ledger sync copies the Redis journal into SQL: give --redis URL")
    policy = policy_of(args)
    stores = await _open(args, policy)
    try:
        if not isinstance(stores.ledger, RedisLedger):
            raise _Fail("the ledger in use is not the Redis ledger")
        sink = SqlLedger(stores.engine, policy)
        start, last = await sync_journal(stores.ledger, sink)
    finally:
        await stores.close()
    _emit(
        args,
        {"from": start, "to": last},
        f"journal copied into SQL from {start} to {last}"
        if last != start
        else f"nothing new in the journal since {start}",
    )
    return EXIT_OK


# --- sample-run -----------------------------------------------------------------------------


def sample_dir() -> Path:
    return Path(__file__).resolve().parent / "sample"


#: (label, number as the lead list writes it, extra gate arguments) of the sample run.
_SAMPLE_CHECKS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("a fresh lead", "138 0013 8000", {}),
    ("a lead already called twice this month", "139-0013-9000", {}),
    ("a number on the do-not-call list", "13700137000", {}),
    ("a public phone on the special list", "010-65001234", {}),
    (
        "a callback presenting the wrong caller ID",
        "13600136000",
        {"is_callback": True, "caller_id": "01058001234"},
    ),
    ("a callback presenting the number the customer dialled", "13600136000", {"is_callback": True}),
    ("a lead assigned 11 months ago (data recalled)", "13500135000", {}),
    ("a malformed number", "12345abc", {}),
)


async def cmd_sample_run(args: argparse.Namespace) -> int:
    """Create the sample campaign, import the sample leads, check a few numbers, print."""
    if args.db:
        return await _sample_run(args, str(args.db))
    with tempfile.TemporaryDirectory(prefix="dialer-sample-") as tmp:
        return await _sample_run(args, f"sqlite+aiosqlite:///{tmp}/sample.sqlite3")


async def _sample_run(args: argparse.Namespace, url: str) -> int:
    sample = sample_dir()
    policy = load_policy(args.policy) if args.policy else load_policy(sample / "policy.toml")
    at = parse_at(args.at or "2026-11-03T10:30", policy)
    spec = load_campaign_file(sample / "campaign.toml")
    stores = await open_compliance(url, policy)
    results: list[dict[str, Any]] = []
    out: list[str] = []
    try:
        if await stores.campaigns.find(spec.name) is None:
            await stores.campaigns.create(spec)
        out.append(f"campaign {spec.name}: products {', '.join(spec.products)}")
        report = await stores.leads.import_csv(
            sample / "leads.csv", spec.name, tz=policy.tz, now=at
        )
        out.append(
            f"leads.csv: {report.rows} rows, {report.created} leads created, "
            f"{report.duplicates_merged} duplicates merged"
        )
        lists = await stores.lists.import_csv(sample / "dnc.csv", actor="sample-run")
        out.append(f"dnc.csv: {lists.added} added, {lists.updated} updated")
        # Two calls earlier this month for the second lead: the monthly cap (2) is reached.
        # (Different products and earlier days of the same week, so no other rule interferes.)
        granted = 0
        for back, product in (
            (timedelta(days=1), spec.products[0]),
            (timedelta(days=1, hours=-4), spec.products[-1]),
        ):
            earlier = at - back
            first = await stores.gate.check_and_reserve(
                "13900139000",
                spec.name,
                product,
                earlier,
                attempt_id=f"sample-{uuid.uuid4().hex}",
            )
            granted += first.allowed
        out.append(f"{granted} earlier calls reserved for {mask('13900139000')} this month\n")
        for label, number, extra in _SAMPLE_CHECKS:
            decision = await stores.gate.check(number, spec.name, None, at, **extra)
            request = await stores.gate.request_for(number, spec.name, None, at, **extra)
            product = request.product if isinstance(request, CallRequest) else "?"
            out.append(f"# {label}")
            out.append(format_decision(number, spec.name, product, decision, policy.tz))
            results.append({"case": label, "number": mask(number), **decision_to_dict(decision)})
        out.append("")
        attempt = f"sample-{uuid.uuid4().hex}"
        decision = await stores.gate.check_and_reserve(
            "13800138000", spec.name, None, at, attempt_id=attempt
        )
        out.append(f"# reserving a call to 138****8000: {'granted' if decision.allowed else 'no'}")
        again = await stores.gate.check("13800138000", spec.name, None, at)
        out.append("# the same product again right after:")
        out.append(
            format_decision("13800138000", spec.name, spec.products[0], again, policy.tz)
        )
        results.append(
            {
                "case": "reserve then check again",
                "number": mask("13800138000"),
                "reserved": decision.allowed,
                **decision_to_dict(again),
            }
        )
    finally:
        await stores.close()
    _emit(args, results, "\n".join(out))
    return EXIT_OK


# --- registration ---------------------------------------------------------------------------


def _leaf(sub: Any, name: str, fn: Handler, help_text: str, full: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name, parents=[_common()], help=help_text, description=help_text
    )
    p.set_defaults(handler=_guard(full, fn))
    return p


def register(subparsers: Any) -> None:
    """Add the compliance subcommands to the ``dialer`` command."""
    p = _leaf(
        subparsers,
        "check",
        cmd_check,
        "may this number be called now? (exit 0 allowed, 1 refused, 2 bad input)",
        "check",
    )
    p.add_argument("number")
    p.add_argument("--campaign", required=True)
    p.add_argument("--product", help="default: the lead's product, else the campaign's first")
    p.add_argument("--at", metavar="TIME", help="ISO 8601, default now; no offset = policy zone")
    p.add_argument(
        "--caller-id",
        metavar="N",
        dest="caller_id",
        help="default: the campaign's (a callback: the dialled number)",
    )
    p.add_argument("--callback", action="store_true", help="a callback/care call (rule A.5)")
    p.add_argument("--dialled", metavar="N", help="the number the customer called us on")
    p.add_argument(
        "--reserve",
        metavar="ATTEMPT_ID",
        help="also reserve the attempt when allowed (what the dialer does)",
    )

    dnc = subparsers.add_parser("dnc", help="do-not-call and special-number lists")
    dsub = dnc.add_subparsers(dest="dnc_command", metavar="ACTION", required=True)
    a = _leaf(dsub, "add", cmd_dnc_add, "put a number on a list", "dnc add")
    a.add_argument("number")
    a.add_argument("--reason", required=True, choices=[r.value for r in ListReason])
    a.add_argument("--source", default="cli", help="where the request came from")
    a.add_argument("--actor", help="who (default $USER)")
    a.add_argument("--note", default="")
    r = _leaf(dsub, "remove", cmd_dnc_remove, "take a number off the lists", "dnc remove")
    r.add_argument("number")
    r.add_argument("--list", choices=[k.value for k in ListKind], help="default: both lists")
    r.add_argument("--source", default="cli")
    r.add_argument("--actor")
    r.add_argument("--note", default="")
    li = _leaf(dsub, "list", cmd_dnc_list, "show the list entries (masked)", "dnc list")
    li.add_argument("--list", choices=[k.value for k in ListKind])
    im = _leaf(
        dsub,
        "import",
        cmd_dnc_import,
        "import a CSV (number[,reason][,note]); all or nothing",
        "dnc import",
    )
    im.add_argument("file")
    im.add_argument(
        "--reason", choices=[r.value for r in ListReason], help="reason for rows without one"
    )
    im.add_argument("--source", help="default: the file name")
    im.add_argument("--actor")
    au = _leaf(dsub, "audit", cmd_dnc_audit, "show the audit trail of list changes", "dnc audit")
    au.add_argument("number", nargs="?")

    leads = subparsers.add_parser("leads", help="lead lists")
    lsub = leads.add_subparsers(dest="leads_command", metavar="ACTION", required=True)
    li2 = _leaf(
        lsub,
        "import",
        cmd_leads_import,
        "import a lead CSV into a campaign; all or nothing",
        "leads import",
    )
    li2.add_argument("file")
    li2.add_argument("--campaign", required=True)
    li2.add_argument(
        "--list",
        dest="list_name",
        metavar="NAME",
        help="the list these leads came with, for reports by list (default: the file's stem)",
    )
    ll = _leaf(lsub, "list", cmd_leads_list, "show a campaign's leads (masked)", "leads list")
    ll.add_argument("--campaign", required=True)
    ll.add_argument("--status", choices=[s.value for s in LeadStatus])

    camp = subparsers.add_parser("campaign", help="campaign registry")
    csub = camp.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    cc = _leaf(
        csub, "create", cmd_campaign_create, "create a campaign from a TOML file", "campaign create"
    )
    cc.add_argument("file")
    _leaf(csub, "list", cmd_campaign_list, "list campaigns", "campaign list")
    cs = _leaf(csub, "show", cmd_campaign_show, "show one campaign", "campaign show")
    cs.add_argument("name")

    pol = subparsers.add_parser("policy", help="the compliance policy")
    psub = pol.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    _leaf(psub, "show", cmd_policy_show, "print the policy in force", "policy show")
    pv = _leaf(psub, "validate", cmd_policy_validate, "validate a policy file", "policy validate")
    pv.add_argument("file", nargs="?")

    led = subparsers.add_parser("ledger", help="contact history and decisions")
    ledsub = led.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    lh = _leaf(
        ledsub,
        "history",
        cmd_ledger_history,
        "a customer's contact history and decisions (masked)",
        "ledger history",
    )
    lh.add_argument("number")
    _leaf(
        ledsub,
        "sync",
        cmd_ledger_sync,
        "copy the Redis ledger's journal into the SQL system of record",
        "ledger sync",
    )

    sr = _leaf(
        subparsers,
        "sample-run",
        cmd_sample_run,
        "create the sample campaign, import sample leads and lists, check sample numbers",
        "sample-run",
    )
    sr.add_argument("--at", metavar="TIME", help="time of the checks (default 2026-11-03T10:30)")
