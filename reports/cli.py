"""``dialer report``: the appendix-4 model and the art. 46 KPIs on the command line.

    dialer report --from 2026-11-01 --to 2026-11-30 --by day [--campaign C]
    dialer report --by agent --csv report.csv           # CSV (UTF-8 with BOM) to a file or -
    dialer report --by day --chart trend.svg --kpi connect_rate
    dialer report --chart funnel.svg --chart-kind funnel
    dialer report --alerts [--to DAY]                   # anomalies of that day, with causes

Dates are local dates in the policy's time zone (default: today there); the table is
printed as text with its Chinese headers. The rollup is refreshed before reading.
Exit codes: 0, 2 bad input, 3 database unreachable; ``--alerts`` exits 1 when it found
an anomaly (so a cron job can mail it).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from compliance.console import EXIT_NO, EXIT_OK, EXIT_UNAVAILABLE, UserError
from reports.model import KPI_LABELS, Grouping, Kpi


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-03") from exc


async def cmd_report(args: argparse.Namespace) -> int:
    """Report by day, hour, agent, campaign, list or caller ID over a date range."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from compliance.cli import db_url, policy_of
    from compliance.tables import open_engine
    from dialer.attempts import AttemptLog
    from reports.store import ReportQuery, ReportStore

    policy = policy_of(args)
    today = datetime.now(policy.tz).date()
    end = args.to or today
    start = args.start or end
    dim, value = _filter(args)
    try:
        query = ReportQuery(start, end, Grouping(args.by), args.campaign, dim, value)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    try:
        engine = await open_engine(db_url(args))
    except (OperationalError, DBAPIError, OSError) as exc:
        print(f"dialer report: error: database unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        await AttemptLog(engine).create_schema()
        store = ReportStore(engine, policy.tz)
        await store.create_schema()
        await store.refresh()
        if args.alerts:
            return await _alerts(args, store, end)
        rows = await store.report(query)
    finally:
        await engine.dispose()
    _print(args, rows, query.group)
    if args.chart:
        _chart(args, rows, query.group, start, end)
    return EXIT_OK


def _filter(args: argparse.Namespace) -> tuple[Grouping | None, str | None]:
    given = [
        (g, v)
        for g, v in (
            (Grouping.AGENT, args.agent),
            (Grouping.LIST, args.list_name),
            (Grouping.CALLER_ID, args.caller_id),
        )
        if v
    ]
    if len(given) > 1:
        raise UserError("give at most one of --agent, --list, --caller-id")
    return given[0] if given else (None, None)


def _print(args: argparse.Namespace, rows: Any, group: Grouping) -> None:
    from reports.export import to_csv, to_text

    if args.csv:
        data = to_csv(rows, group)
        if args.csv == "-":
            sys.stdout.write(data)
        else:
            Path(args.csv).write_text(data, encoding="utf-8")
            print(f"CSV written to {args.csv} ({len(rows)} rows)", file=sys.stderr)
        return
    if args.json:
        print(
            json.dumps(
                [{"key": r.key, **_model(r.model)} for r in rows], ensure_ascii=False, indent=2
            )
        )
        return
    sys.stdout.write(to_text(rows, group))


def _model(model: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(model)


def _chart(args: argparse.Namespace, rows: Any, group: Grouping, start: date, end: date) -> None:
    from reports.charts import funnel, trend
    from reports.model import Counts

    span = f"{start}" if start == end else f"{start} ~ {end}"
    if args.chart_kind == "funnel":
        total = Counts()
        for r in rows:
            total = total + r.counts
        svg = funnel(
            f"外呼漏斗 funnel {span}",
            [
                ("外呼量 volume", total.dialled),
                ("接通量 connects", total.connects),
                ("有效通话 effective", total.effective),
                ("订单量 orders", total.orders),
            ],
        )
    else:
        kpi = Kpi(args.kpi)
        zh, en = KPI_LABELS[kpi]
        svg = trend(
            f"{zh} {en} {span}",
            [r.key for r in rows],
            [r.counts.kpi(kpi) for r in rows],
            percent=kpi is not Kpi.VOLUME,
        )
    Path(args.chart).write_text(svg, encoding="utf-8")
    print(f"chart written to {args.chart}", file=sys.stderr)


async def _alerts(args: argparse.Namespace, store: Any, day: date) -> int:
    from reports.service import anomalies

    found = await anomalies(store, day, campaign=args.campaign)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "kpi": a.kpi.value,
                        "bucket": a.bucket,
                        "value": a.value,
                        "expected": a.expected,
                        "change": a.change,
                        "z": a.z,
                        "causes": [
                            {"dimension": c.dimension.value, "key": c.key, "share": c.share}
                            for c in a.causes
                        ],
                        "text": a.describe(),
                    }
                    for a in found
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for a in found:
            print(a.describe())
        if not found:
            print(f"{day}: every KPI within its usual band")
    return EXIT_NO if found else EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="appendix-4 model and KPIs by day, hour, agent, campaign, list or caller ID",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", metavar="URL", help="database URL (env DIALER_DB_URL)")
    p.add_argument("--policy", metavar="FILE", help="policy file (env DIALER_POLICY)")
    p.add_argument("--from", dest="start", type=_date, help="first local date (default: --to)")
    p.add_argument("--to", type=_date, help="last local date, inclusive (default: today)")
    p.add_argument("--by", choices=[g.value for g in Grouping], default="day")
    p.add_argument("--campaign")
    p.add_argument("--agent", help="only this agent's calls (with --by day|hour|campaign)")
    p.add_argument("--list", dest="list_name", metavar="NAME", help="only this lead list")
    p.add_argument("--caller-id", dest="caller_id", help="only calls presenting this number")
    p.add_argument("--csv", metavar="FILE", help="write CSV to FILE ('-': standard output)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--chart", metavar="FILE.svg", help="also write an SVG chart")
    p.add_argument("--chart-kind", choices=["trend", "funnel"], default="trend")
    p.add_argument("--kpi", choices=[k.value for k in Kpi], default=Kpi.CONNECT_RATE.value)
    p.add_argument(
        "--alerts",
        action="store_true",
        help="KPI anomalies of the --to day against earlier weeks, with likely causes",
    )
    p.set_defaults(handler=cmd_report)
