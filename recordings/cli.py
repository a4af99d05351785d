"""``dialer recordings|complaint|audit``: the command line of the recordings area.

Every command takes ``--db URL`` (default ``$DIALER_DB_URL`` or SQLite
``var/dialer.sqlite3``), ``--store DIR`` (default ``$DIALER_RECORDINGS_DIR``
or ``var/recordings``) and ``--policy FILE`` (default ``$DIALER_POLICY`` or the
packaged policy: its numbering plan keys the numbers a complaint blacklists, so
they match what the gate checks); ``DIALER_NUMBER_KEY`` must be set. With
``$DIALER_REDIS_URL`` (and ``$DIALER_REDIS_PREFIX``, default ``dialer:``), as for
``dialer dnc``, a complaint's blacklisting also reaches the Redis list mirror. The CLI acts as
``cli:<login>`` (``--actor`` to name the person); searches and exports need
``--reason`` and are audited like API calls. Numbers are printed masked.
Exit codes follow ``compliance.console``: 1 when ``verify`` finds problems.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from compliance.console import EXIT_NO, EXIT_OK, UserError
from identity.model import Role
from recordings import audit
from recordings.anchor import AnchorError, read_anchors, sink_of, write_anchor
from recordings.bundle import verify_bundle
from recordings.cli_support import actor as _actor
from recordings.cli_support import leaf as _leaf
from recordings.cli_support import open_service as open_service
from recordings.cli_support import parse_time as _time
from recordings.model import (
    AttemptMeta,
    ComplaintChannel,
    ComplaintStatus,
    Judgement,
    Origin,
    Problem,
    SearchQuery,
)
from recordings.naming import check_ident
from recordings.pii import mask
from recordings.service import (
    complaint_public,
    recording_public,
)
from recordings.signing import SigningKeyError, load_public_key, write_new_key


def _print_problems(what: str, checked: int | None, problems: list[Problem]) -> int:
    for p in problems:
        print(f"{p.kind:8} {p.where}: {p.message}")
    counted = "" if checked is None else f"{checked} checked, "
    print(f"{what}: {counted}{len(problems)} problem(s)")
    return EXIT_NO if problems else EXIT_OK


# --- recordings ------------------------------------------------------------------------------


async def cmd_ingest(args: argparse.Namespace) -> int:
    meta = AttemptMeta(
        number=args.number,
        started_at=_time(args.started_at, "--started-at"),
        attempt_id=args.attempt,
        campaign=args.campaign,
        agent=args.agent,
        duration_s=args.duration,
        format=args.format,
        origin=Origin(args.origin),
    )
    async with open_service(args) as service:
        rec = await service.ingest(args.name, meta, args.file, actor=_actor(args, Role.ADMIN))
    print(json.dumps(recording_public(rec), sort_keys=True, ensure_ascii=False))
    return EXIT_OK


async def cmd_search(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        number_hmac = service.number_digest(args.number) if args.number else None
        query = SearchQuery(
            number_hmac=number_hmac,
            since=_time(args.since, "--from") if args.since else None,
            until=_time(args.until, "--to") if args.until else None,
            agent=check_ident(args.agent, "agent") if args.agent else None,
            campaign=check_ident(args.campaign, "campaign") if args.campaign else None,
            complaint_id=args.complaint,
            limit=args.limit,
        )
        shown = {
            k: v
            for k, v in {
                "number": mask(args.number) if args.number else None,
                "from": args.since,
                "to": args.until,
                "agent": args.agent,
                "campaign": args.campaign,
                "complaint": args.complaint,
            }.items()
            if v is not None
        }
        page = await service.search(
            _actor(args, Role.COMPLIANCE), query, reason=args.reason, filters=shown
        )
    for rec in page.items:
        print(json.dumps(recording_public(rec), sort_keys=True, ensure_ascii=False))
    print(
        f"{len(page.items)} recording(s){' (more: narrow the search)' if page.next_cursor else ''}",
        file=sys.stderr,
    )
    return EXIT_OK


async def cmd_verify(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        checked, problems = await service.verify_store()
    return _print_problems("recordings verify", checked, problems)


async def cmd_verify_bundle(args: argparse.Namespace) -> int:
    path = Path(args.bundle)
    if args.public_key:
        # An outsider's check: the signature and the contents, without the database.
        try:
            public = await asyncio.to_thread(load_public_key, Path(args.public_key))
        except SigningKeyError as exc:
            raise UserError(str(exc)) from exc
        problems = await asyncio.to_thread(verify_bundle, path, public)
        print("checked with the given public key; the audit log was not consulted")
    else:
        async with open_service(args) as service:
            problems = await service.verify_bundle(path)
    return _print_problems(f"bundle {path.name}", None, problems)


async def cmd_purge(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        result = await service.purge(
            _actor(args, Role.ADMIN),
            now=_time(args.now, "--now") if args.now else None,
            dry_run=args.dry_run,
        )
    for name in result.purged:
        print(("would purge " if args.dry_run else "purged ") + name)
    print(
        f"{result.due} recording(s) {'due' if args.dry_run else 'purged'}, "
        f"{result.files_removed} file(s) removed, "
        f"{result.held_skipped} past retention kept on legal hold"
    )
    return EXIT_OK


async def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    role = Role.SUPERVISOR if args.masked else Role.COMPLIANCE
    async with open_service(args) as service:
        info = await service.export_bundle(
            _actor(args, role), args.complaint_id, out, reason=args.reason
        )
    print(f"{info.path}: {info.files} files, {info.size} bytes, sha256 {info.sha256}")
    return EXIT_OK


async def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from dialer.logmasking import MaskingAccessLogger
    from identity.store import IdentityStore
    from recordings.http import make_standalone_app

    async with open_service(args, blacklist=True) as service:
        identity = await IdentityStore.open(
            service.config.db_url, schema=service.config.db_schema, audit=audit.AccessAudit()
        )
        runner = web.AppRunner(
            make_standalone_app(service, identity), access_log_class=MaskingAccessLogger
        )
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        print(f"recordings API on http://{args.host}:{args.port}/api/recordings", file=sys.stderr)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            await identity.aclose()
    return EXIT_OK


# --- complaints ------------------------------------------------------------------------------


async def cmd_complaint_register(args: argparse.Namespace) -> int:
    async with open_service(args, blacklist=True) as service:
        case = await service.register_complaint(
            _actor(args, Role.COMPLIANCE),
            args.number,
            ComplaintChannel(args.channel),
            args.text,
            received_at=_time(args.received_at, "--received-at") if args.received_at else None,
        )
    print(json.dumps(complaint_public(case), sort_keys=True, ensure_ascii=False))
    return EXIT_OK


async def cmd_complaint_judge(args: argparse.Namespace) -> int:
    try:
        refund = None if args.refund is None else Decimal(args.refund)
    except InvalidOperation as exc:
        raise UserError(f"--refund {args.refund!r} is not an amount") from exc
    judgement = Judgement(
        company_at_fault=args.at_fault,
        note=args.note,
        penalty_note=args.penalty,
        order_cancelled=args.cancel_order,
        refund=refund,
        reply=args.reply,
    )
    async with open_service(args) as service:
        case = await service.judge(_actor(args, Role.COMPLIANCE), args.id, judgement)
    print(json.dumps(complaint_public(case), sort_keys=True, ensure_ascii=False))
    return EXIT_OK


async def cmd_complaint_close(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        case = await service.close(_actor(args, Role.COMPLIANCE), args.id, reply=args.reply)
    print(json.dumps(complaint_public(case), sort_keys=True, ensure_ascii=False))
    return EXIT_OK


async def cmd_complaint_list(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        cases = await service.list_complaints(
            status=ComplaintStatus(args.status) if args.status else None
        )
    for c in cases:
        fault = (
            "-"
            if c.judgement is None
            else ("at fault" if c.judgement.company_at_fault else "not at fault")
        )
        print(
            f"{c.id:6} {c.status.value:6} {c.number_masked:14} {c.channel.value:6} "
            f"{c.received_at:%Y-%m-%d} {fault:12} {len(c.recording_ids)} recording(s)"
        )
    print(f"{len(cases)} complaint(s)", file=sys.stderr)
    return EXIT_OK


async def cmd_complaint_report(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        r = await service.report(
            since=_time(args.since, "--from") if args.since else None,
            until=_time(args.until, "--to") if args.until else None,
        )
    print(f"complaints {args.since or 'start'} .. {args.until or 'now'}")
    print(f"  total {r.total}: open {r.open}, closed {r.closed}")
    print(f"  company at fault {r.at_fault}, not at fault {r.not_at_fault}")
    print(f"  orders cancelled {r.orders_cancelled}, refunds {r.refunds_total}")
    print("  by channel: " + ", ".join(f"{k} {v}" for k, v in sorted(r.by_channel.items())))
    return EXIT_OK


# --- audit -------------------------------------------------------------------------


async def cmd_audit_verify(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        public = service.signer.public
        if args.public_key:
            try:
                public = load_public_key(Path(args.public_key))
            except SigningKeyError as exc:
                raise UserError(str(exc)) from exc
        points: list[audit.AnchorPoint] = []
        anchor_problems: list[Problem] = []
        for name in args.anchor or ():
            try:
                found, bad = await asyncio.to_thread(read_anchors, Path(name), public)
            except AnchorError as exc:
                raise UserError(str(exc)) from exc
            points.extend(found)
            anchor_problems.extend(bad)
        problems = anchor_problems + await audit.verify(service.engine, anchors=points)
        last = await audit.last_entry(service.engine)
    print(f"chain end: seq {last[0]} hash {last[1]}")
    if args.anchor:
        newest = max((p.seq for p in points), default=None)
        print(
            f"{len(points)} signed anchor(s) checked"
            + ("" if newest is None else f", the newest at seq {newest}")
        )
    else:
        print("no --anchor given: a tail rewritten together with its head cannot be detected")
    return _print_problems("audit verify", None, problems)


async def cmd_audit_anchor(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        try:
            sink = sink_of(args.to or service.config.anchor_target)
        except AnchorError as exc:
            raise UserError(str(exc)) from exc
        record = await write_anchor(service.engine, service.signer, sink)
    print(f"anchored seq {record['seq']} hash {record['hash']} to {sink.describe()}")
    return EXIT_OK


async def cmd_audit_public_key(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        print(service.signer.public_pem(), end="")
        print(f"key id {service.signer.key_id}", file=sys.stderr)
    return EXIT_OK


async def cmd_audit_keygen(args: argparse.Namespace) -> int:
    path = Path(os.path.abspath(args.file))  # noqa: ASYNC240 (no I/O: a path joined to the cwd)
    try:
        signer = await asyncio.to_thread(write_new_key, path)
    except FileExistsError as exc:
        raise UserError(f"{path} exists; refusing to overwrite a signing key") from exc
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from exc
    print(f"signing key {path} (0600) and public key {path}.pub, key id {signer.key_id}")
    print(f"use it with: export DIALER_SIGNING_KEY_FILE={path}", file=sys.stderr)
    return EXIT_OK


async def cmd_audit_show(args: argparse.Namespace) -> int:
    async with open_service(args) as service:
        entries = await audit.tail(service.engine, args.limit)
    for e in entries:
        print(
            f"{e.seq:8} {e.at:%Y-%m-%d %H:%M:%S} {e.outcome.value:6} {e.actor:20} {e.action:22} "
            f"{e.target} reason={e.reason!r} {e.detail}"
        )
    return EXIT_OK


# --- parser ----------------------------------------------------------------------------------


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--number")
    p.add_argument("--from", dest="since", help="ISO time, inclusive")
    p.add_argument("--to", dest="until", help="ISO time, exclusive")
    p.add_argument("--agent")
    p.add_argument("--campaign")
    p.add_argument("--complaint", type=int)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--reason", required=True, help="why you search (audited)")


def register(subparsers: Any) -> None:
    rec = subparsers.add_parser("recordings", help="recording index, store, retention, evidence")
    rsub = rec.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _leaf(rsub, "ingest", cmd_ingest, "index a recording file (desk-phone hook, manual)")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("--number", required=True)
    p.add_argument("--started-at", required=True, help="ISO time the recording started")
    p.add_argument("--attempt", default="")
    p.add_argument("--campaign", default="")
    p.add_argument("--agent", default="")
    p.add_argument(
        "--duration", type=float, default=None, help="seconds (default: from the WAV header)"
    )
    p.add_argument("--format", default="wav")
    p.add_argument("--origin", choices=[o.value for o in Origin], default=Origin.DESK.value)
    _search_args(_leaf(rsub, "search", cmd_search, "search recordings (audited)"))
    _leaf(rsub, "verify", cmd_verify, "re-check every stored file's checksum (exit 1 on problems)")
    p = _leaf(
        rsub,
        "verify-bundle",
        cmd_verify_bundle,
        "check an evidence bundle: signature, contents, the audit log's record of its export",
    )
    p.add_argument("bundle")
    p.add_argument(
        "--public-key",
        metavar="PEM",
        default=None,
        help="check offline with this public key (dialer audit public-key), without the database",
    )
    p = _leaf(rsub, "purge", cmd_purge, "delete recordings past retention (legal holds kept)")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--now", default=None, help="ISO time to purge as of (default now)")
    p = _leaf(rsub, "export", cmd_export, "write a complaint's evidence bundle (zip)")
    p.add_argument("complaint_id", type=int)
    p.add_argument("--out", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument(
        "--masked", action="store_true", help="mask numbers (a bundle for non-compliance readers)"
    )
    p = _leaf(rsub, "serve", cmd_serve, "serve the recordings HTTP API alone")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)

    comp = subparsers.add_parser(
        "complaint", help="customer complaints: register, judge, close, report"
    )
    csub = comp.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _leaf(
        csub,
        "register",
        cmd_complaint_register,
        "register a complaint; blacklists the number at once",
    )
    p.add_argument("number")
    p.add_argument("--channel", choices=[c.value for c in ComplaintChannel], required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--received-at", default=None)
    p = _leaf(csub, "judge", cmd_complaint_judge, "record the judgement and the actions taken")
    p.add_argument("id", type=int)
    fault = p.add_mutually_exclusive_group(required=True)
    fault.add_argument("--at-fault", dest="at_fault", action="store_true")
    fault.add_argument("--not-at-fault", dest="at_fault", action="store_false")
    p.add_argument("--note", default="")
    p.add_argument("--penalty", default="", help="penalty note (who, what)")
    p.add_argument("--cancel-order", action="store_true")
    p.add_argument("--refund", default=None, help="amount refunded")
    p.add_argument("--reply", default="", help="the reply to the customer")
    p = _leaf(csub, "close", cmd_complaint_close, "close a judged complaint (releases legal holds)")
    p.add_argument("id", type=int)
    p.add_argument("--reply", default="")
    p = _leaf(csub, "list", cmd_complaint_list, "list complaints")
    p.add_argument("--status", choices=[s.value for s in ComplaintStatus], default=None)
    p = _leaf(csub, "report", cmd_complaint_report, "open and closed cases, judgements, actions")
    p.add_argument("--from", dest="since", default=None)
    p.add_argument("--to", dest="until", default=None)
    from casework.cli import register_audit_view, register_complaint_steps

    register_complaint_steps(csub)  # the appendix-3 steps of a case

    aud = subparsers.add_parser("audit", help="the access audit log")
    asub = aud.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _leaf(asub, "verify", cmd_audit_verify, "check the whole hash chain (exit 1 on problems)")
    p.add_argument(
        "--anchor",
        metavar="FILE",
        action="append",
        help="signed anchors (dialer audit anchor): prove nothing before them changed",
    )
    p.add_argument(
        "--public-key", metavar="PEM", default=None, help="the signing key's public half"
    )
    p = _leaf(asub, "anchor", cmd_audit_anchor, "write a signed anchor of the log's last entry")
    p.add_argument(
        "--to",
        default=None,
        help="file:PATH, PATH, syslog, syslog:/dev/log or syslog:HOST:PORT "
        "(default $DIALER_AUDIT_ANCHOR)",
    )
    _leaf(asub, "public-key", cmd_audit_public_key, "print the evidence signing public key (PEM)")
    p = asub.add_parser(
        "keygen", help="create an Ed25519 signing key file (DIALER_SIGNING_KEY_FILE)"
    )
    p.add_argument("file")
    p.set_defaults(handler=cmd_audit_keygen)
    p = _leaf(asub, "show", cmd_audit_show, "the latest entries")
    p.add_argument("--limit", type=int, default=50)
    register_audit_view(asub)
