"""``dialer agi ...`` and ``dialer desk ...``: the FastAGI server and the desk-phone administration.

  dialer agi serve [--host H] [--port P] [--max-sessions N] [--env-timeout S]
                   [--handler-timeout S]
  dialer agi routes
  dialer desk check EXTENSION NUMBER             what desk_check would answer now (nothing stored)
  dialer desk grant add --extension E --requester R --approver A --approver B
                        (--days N | --until ISO) [--from ISO] [--reason TEXT]
  dialer desk grant list [--extension E] [--all]
  dialer desk grant revoke ID --by NAME
  dialer desk bill --month YYYY-MM [--extension E]

Shared options: ``--db URL`` (env DIALER_DB_URL; default sqlite ``var/dialer.sqlite3``
under the current directory), ``--desk-config FILE`` (env DIALER_DESK_CONFIG;
default: built-in defaults), and for ``agi serve`` also ``--policy FILE``
(env DIALER_POLICY) and ``--redis URL`` (env DIALER_REDIS_URL) for the compliance
gate. Numbers are masked in all output. Exit codes as ``compliance.console``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from agi_scripts.app import ROUTE_NAMES, AgiService, AgiSettings
from agi_scripts.desk import DeskService
from agi_scripts.desk_config import DeskConfig, DeskConfigError, load_desk_config
from agi_scripts.desk_rules import Grant
from agi_scripts.desk_store import DeskStore, GrantError
from agi_scripts.server import AgiServerConfig
from compliance.console import EXIT_NO, EXIT_OK, EXIT_UNAVAILABLE, UserError
from compliance.numbers import mask

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], Awaitable[int]]


def db_url(args: argparse.Namespace) -> str:
    if args.db:
        return str(args.db)
    return os.environ.get("DIALER_DB_URL") or (
        f"sqlite+aiosqlite:///{Path.cwd() / 'var' / 'dialer.sqlite3'}"
    )


def desk_config_of(args: argparse.Namespace) -> DeskConfig:
    path = args.desk_config or os.environ.get("DIALER_DESK_CONFIG") or None
    try:
        return load_desk_config(path)
    except DeskConfigError as exc:
        raise UserError(str(exc)) from None


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)


def _guard(fn: Handler) -> Handler:
    async def run(args: argparse.Namespace) -> int:
        try:
            return await fn(args)
        except (GrantError, DeskConfigError) as exc:
            raise UserError(str(exc)) from None
        except (OperationalError, DBAPIError, OSError) as exc:
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            print(f"dialer {args.command}: error: service unavailable: {first}", file=sys.stderr)
            return EXIT_UNAVAILABLE

    return run


async def _desk(args: argparse.Namespace) -> DeskService:
    url = db_url(args)
    _ensure_sqlite_dir(url)
    return DeskService(desk_config_of(args), await DeskStore.open(url))


def _parse_time(text: str, tz: Any, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: not an ISO 8601 time like 2026-12-31T18:00") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


# --- agi ------------------------------------------------------------------------------------
async def cmd_agi_serve(args: argparse.Namespace) -> int:
    from compliance.cli import policy_of

    try:
        server = AgiServerConfig(
            host=args.host,
            port=args.port,
            max_sessions=args.max_sessions,
            max_connections=max(args.max_sessions, args.max_connections),
            env_timeout_s=args.env_timeout,
            handler_timeout_s=args.handler_timeout,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    url = db_url(args)
    _ensure_sqlite_dir(url)
    settings = AgiSettings(
        server=server,
        db_url=url,
        redis_url=args.redis or os.environ.get("DIALER_REDIS_URL") or None,
        desk_config=args.desk_config or os.environ.get("DIALER_DESK_CONFIG") or None,
    )
    try:
        service = await AgiService.start(settings, policy=policy_of(args))
    except DeskConfigError as exc:
        raise UserError(str(exc)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"dialer agi: listening on {args.host}:{service.port} "
        f"(routes: {', '.join(service.server.routes)})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await service.stop()
    return EXIT_OK


async def cmd_agi_routes(args: argparse.Namespace) -> int:
    for name in ROUTE_NAMES:
        print(f"{name}    (the dialplan may also write {name.replace('_', '-')})")
    return EXIT_OK


# --- desk -----------------------------------------------------------------------------------
async def cmd_desk_check(args: argparse.Namespace) -> int:
    desk = await _desk(args)
    try:
        decision = await desk.check(args.extension, args.number)
    finally:
        await desk.store.close()
    data = {
        "extension": args.extension,
        "number": mask(args.number),
        "class": desk.config.class_of(args.extension).value,
        "decision": "ALLOW" if decision.allowed else "BLOCK",
        "reason": decision.reason.value,
        "dial": mask(decision.dial),
        "kind": decision.kind.value,
        "spend_yuan": decision.spend_fen / 100,
        "quota_yuan": decision.quota_fen / 100,
    }
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(" ".join(f"{k}={v}" for k, v in data.items()))
    return EXIT_OK if decision.allowed else EXIT_NO


def _grant_line(g: Grant, now: datetime) -> str:
    state = (
        "revoked"
        if g.revoked_at
        else ("active" if g.active_at(now) else ("pending" if g.starts_at > now else "expired"))
    )
    return (
        f"#{g.id} ext={g.extension} {state} {g.starts_at.isoformat()} -> "
        f"{g.expires_at.isoformat()} requester={g.requester} "
        f"approvers={','.join(g.approvers)}"
        + (f" revoked_by={g.revoked_by}" if g.revoked_at else "")
        + (f" reason={g.reason!r}" if g.reason else "")
    )


async def cmd_grant_add(args: argparse.Namespace) -> int:
    desk = await _desk(args)
    try:
        tz = desk.config.tz
        start = _parse_time(args.start, tz, "--from") if args.start else desk.clock()
        if (args.days is None) == (args.until is None):
            raise UserError("give exactly one of --days N or --until TIME")
        if args.days is not None:
            if args.days <= 0:
                raise UserError("--days must be > 0")
            end = start + timedelta(days=args.days)
        else:
            end = _parse_time(args.until, tz, "--until")
        grant = await desk.add_grant(
            args.extension, args.requester, args.approver or [], start, end, args.reason or ""
        )
    finally:
        await desk.store.close()
    print(_grant_line(grant, desk.clock()))
    return EXIT_OK


async def cmd_grant_list(args: argparse.Namespace) -> int:
    desk = await _desk(args)
    try:
        now = desk.clock()
        grants = await desk.store.grants(args.extension, active_at=None if args.all else now)
    finally:
        await desk.store.close()
    for g in grants:
        print(_grant_line(g, now))
    if not grants:
        print("no grants" + ("" if args.all else " active (--all shows expired and revoked)"))
    return EXIT_OK


async def cmd_grant_revoke(args: argparse.Namespace) -> int:
    desk = await _desk(args)
    try:
        grant = await desk.revoke_grant(args.id, args.by)
    finally:
        await desk.store.close()
    print(_grant_line(grant, desk.clock()))
    return EXIT_OK


_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])\Z")


async def cmd_bill(args: argparse.Namespace) -> int:
    if not _MONTH.match(args.month):
        raise UserError(f"--month {args.month!r}: expected YYYY-MM, e.g. 2026-11")
    desk = await _desk(args)
    try:
        calls = await desk.store.calls(args.month, args.extension)
    finally:
        await desk.store.close()
    tz = desk.config.tz
    by_ext: dict[str, list[Any]] = {}
    for call in calls:
        by_ext.setdefault(call.extension, []).append(call)
    if args.json:
        print(
            json.dumps(
                {
                    ext: {
                        "class": desk.config.class_of(ext).value,
                        "total_yuan": sum(c.cost_fen for c in items) / 100,
                        "calls": [
                            {
                                "ended_at": c.ended_at.astimezone(tz).isoformat(),
                                "number": mask(c.number_key),
                                "kind": c.kind,
                                "billsec": c.billsec,
                                "cost_yuan": c.cost_fen / 100,
                            }
                            for c in items
                        ],
                    }
                    for ext, items in by_ext.items()
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return EXIT_OK
    print(f"Desk-phone bill {args.month} (times {desk.config.timezone}, amounts in yuan)")
    if not by_ext:
        print("  no rated calls")
    for ext, items in by_ext.items():
        total = sum(c.cost_fen for c in items)
        print(f"\nExtension {ext} ({desk.config.class_of(ext).value})")
        print(f"  {'ended':<19}  {'number':<16} {'kind':<24} {'sec':>6} {'cost':>8}")
        for c in items:
            print(
                f"  {c.ended_at.astimezone(tz):%Y-%m-%d %H:%M:%S}  {mask(c.number_key):<16} "
                f"{c.kind:<24} {c.billsec:>6} {c.cost_fen / 100:>8.2f}"
            )
        print(f"  {'total':<19}  {len(items):>3} calls{'':<30} {total / 100:>8.2f}")
    return EXIT_OK


# --- registration ---------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="database URL (env DIALER_DB_URL)")
    p.add_argument("--desk-config", metavar="FILE", help="desk file (env DIALER_DESK_CONFIG)")


def register(subparsers: Any) -> None:
    agi = subparsers.add_parser("agi", help="the FastAGI server")
    agi_sub = agi.add_subparsers(dest="agi_command", metavar="ACTION", required=True)
    serve = agi_sub.add_parser("serve", help="run the FastAGI server until SIGTERM/SIGINT")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4573)
    serve.add_argument("--policy", metavar="FILE", help="policy file (env DIALER_POLICY)")
    serve.add_argument("--redis", metavar="URL", help="Redis ledger (env DIALER_REDIS_URL)")
    serve.add_argument("--max-sessions", type=int, default=256)
    serve.add_argument("--max-connections", type=int, default=1024)
    serve.add_argument("--env-timeout", type=float, default=5.0, metavar="SECONDS")
    serve.add_argument("--handler-timeout", type=float, default=10.0, metavar="SECONDS")
    serve.set_defaults(handler=_guard(cmd_agi_serve))
    routes = agi_sub.add_parser("routes", help="list the AGI routes")
    routes.set_defaults(handler=cmd_agi_routes)

    desk = subparsers.add_parser("desk", help="desk phones: grants, bills, checks")
    desk_sub = desk.add_subparsers(dest="desk_command", metavar="ACTION", required=True)
    check = desk_sub.add_parser("check", help="what desk_check would answer now")
    _common(check)
    check.add_argument("extension")
    check.add_argument("number")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_guard(cmd_desk_check))

    grant = desk_sub.add_parser("grant", help="temporary long-distance grants")
    grant_sub = grant.add_subparsers(dest="grant_command", metavar="ACTION", required=True)
    add = grant_sub.add_parser("add", help="record an approved long-distance request")
    _common(add)
    add.add_argument("--extension", required=True)
    add.add_argument("--requester", required=True)
    add.add_argument("--approver", action="append", help="repeat for each approver")
    add.add_argument("--days", type=int)
    add.add_argument("--until", metavar="TIME")
    add.add_argument("--from", dest="start", metavar="TIME", help="default: now")
    add.add_argument("--reason")
    add.set_defaults(handler=_guard(cmd_grant_add))
    lst = grant_sub.add_parser("list", help="active grants (--all: every grant)")
    _common(lst)
    lst.add_argument("--extension")
    lst.add_argument("--all", action="store_true")
    lst.set_defaults(handler=_guard(cmd_grant_list))
    revoke = grant_sub.add_parser("revoke", help="end a grant now")
    _common(revoke)
    revoke.add_argument("id", type=int)
    revoke.add_argument("--by", required=True)
    revoke.set_defaults(handler=_guard(cmd_grant_revoke))

    bill = desk_sub.add_parser("bill", help="itemized monthly bill per extension (for HR)")
    _common(bill)
    bill.add_argument("--month", required=True, metavar="YYYY-MM")
    bill.add_argument("--extension")
    bill.add_argument("--json", action="store_true")
    bill.set_defaults(handler=_guard(cmd_bill))
