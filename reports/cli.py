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
    register_staffing(subparsers)


# --- dialer staffing ------------------------------------------------------------------------

#: Occupancy the predictive pacer reached in the project's pacing benchmark (README), by
#: team size: the planner's default when no measured occupancy is given.
BENCH_OCCUPANCY = ((10, 0.64), (40, 0.77), (10**9, 0.82))


def default_occupancy(agents: int) -> float:
    return next(occ for size, occ in BENCH_OCCUPANCY if agents <= size)


def cmd_staffing_inbound(args: argparse.Namespace) -> int:
    """Erlang C: agents for a forecast inbound volume, handle time and service level."""
    from reports.staffing import inbound_agents

    try:
        plan = inbound_agents(
            args.calls,
            args.period * 60,
            args.handle,
            service_level_target=args.service_level / 100,
            target_seconds=args.within,
            max_occupancy=args.max_occupancy / 100,
            shrinkage=args.shrinkage / 100,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(plan), indent=2))
        return EXIT_OK
    print(
        f"{args.calls:g} calls per {args.period:g} min, {args.handle:g} s each = "
        f"{plan.traffic:.2f} Erlangs\n"
        f"座席 agents needed: {plan.agents} (schedule {plan.scheduled} with "
        f"{args.shrinkage:g}% shrinkage)\n"
        f"服务水平 service level: {100 * plan.service_level:.1f}% answered within "
        f"{args.within:g} s (target {args.service_level:g}%)\n"
        f"平均应答时间 ASA: {plan.average_speed_of_answer:.1f} s; wait probability "
        f"{100 * plan.wait_probability:.1f}%; occupancy {100 * plan.occupancy:.1f}%"
    )
    return EXIT_OK


async def cmd_staffing_outbound(args: argparse.Namespace) -> int:
    """Outbound what-if from the campaign's measured figures: agents for a date, days for a
    team, or what a team achieves by a date."""
    from datetime import timedelta

    from compliance.cli import db_url, policy_of
    from compliance.tables import open_engine
    from dialer.attempts import AttemptLog
    from reports.staffing import ListWork, Measured, achieved_by, agents_for_date, days_for_team
    from reports.store import ReportQuery, ReportStore

    policy = policy_of(args)
    today = datetime.now(policy.tz).date()
    engine = await open_engine(db_url(args))
    try:
        await AttemptLog(engine).create_schema()
        store = ReportStore(engine, policy.tz)
        await store.create_schema()
        await store.refresh()
        rows = await store.report(
            ReportQuery(
                today - timedelta(days=args.measure_days), today, Grouping.TOTAL, args.campaign
            )
        )
    finally:
        await engine.dispose()
    if not rows or rows[0].counts.dialled == 0 or rows[0].counts.bridged == 0:
        raise UserError(
            f"campaign {args.campaign}: no connected calls in the last {args.measure_days} days "
            "to measure from"
        )
    c = rows[0].counts
    agents_hint = args.agents or 10
    try:
        measured = Measured(
            connect_rate=c.bridged / c.dialled,
            talk_seconds=(c.talk_seconds / c.bridged) + args.wrap,
            occupancy=(args.occupancy / 100) if args.occupancy else default_occupancy(agents_hint),
            effective_rate=c.effective / c.bridged,
            success_rate=c.orders / c.effective if c.effective else 0.0,
        )
        work = ListWork(leads=args.leads, tries=args.tries, hours_per_day=args.hours_per_day)
        if args.by and args.agents:
            plan = achieved_by(measured, work, args.agents, today, args.by)
        elif args.by:
            plan = agents_for_date(measured, work, today, args.by)
        elif args.agents:
            plan = days_for_team(measured, work, args.agents, start=today)
        else:
            raise UserError("give --agents (days needed), --by (agents needed) or both")
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    print(
        f"measured over {args.measure_days} days: connect rate "
        f"{100 * measured.connect_rate:.1f}%, handle {measured.talk_seconds:.0f} s, occupancy "
        f"{100 * measured.occupancy:.0f}%, effective {100 * measured.effective_rate:.1f}%, "
        f"success {100 * measured.success_rate:.1f}%"
    )
    finish = f", last calling day {plan.finish}" if plan.finish else ""
    print(
        f"{plan.agents} agents, {plan.calling_days} calling days{finish}: "
        f"{plan.leads_worked:,.0f} of {args.leads:,} leads worked, {plan.dials:,.0f} dials, "
        f"{plan.connects:,.0f} connects, {plan.effective:,.0f} effective, "
        f"{plan.orders:,.0f} orders ({plan.agent_hours:,.1f} agent-hours)"
    )
    return EXIT_OK


def register_staffing(subparsers: Any) -> None:
    p = subparsers.add_parser("staffing", help="Erlang C for inbound; outbound list what-ifs")
    sub = p.add_subparsers(dest="staffing_command", metavar="KIND", required=True)
    inbound = sub.add_parser("inbound", help=cmd_staffing_inbound.__doc__)
    inbound.add_argument("--calls", type=float, required=True, help="forecast calls per period")
    inbound.add_argument("--period", type=float, default=30, help="minutes (default 30)")
    inbound.add_argument("--handle", type=float, required=True, help="mean handle time, seconds")
    inbound.add_argument("--service-level", type=float, default=80, help="percent (default 80)")
    inbound.add_argument("--within", type=float, default=20, help="seconds (default 20)")
    inbound.add_argument("--max-occupancy", type=float, default=100, help="percent")
    inbound.add_argument("--shrinkage", type=float, default=0, help="percent")
    inbound.add_argument("--json", action="store_true")
    inbound.set_defaults(handler=cmd_staffing_inbound)
    out = sub.add_parser("outbound", help=cmd_staffing_outbound.__doc__)
    out.add_argument("--db", metavar="URL")
    out.add_argument("--policy", metavar="FILE")
    out.add_argument("--campaign", required=True)
    out.add_argument("--leads", type=int, required=True, help="leads left to work")
    out.add_argument("--tries", type=int, default=2, help="tries per lead (caps: 2 a month)")
    out.add_argument("--agents", type=int, help="the team: how many days it needs")
    out.add_argument("--by", type=_date, help="the date: agents needed (with --agents: achieved)")
    out.add_argument("--hours-per-day", type=float, default=9.0)
    out.add_argument("--wrap", type=float, default=15.0, help="wrap-up seconds per call")
    out.add_argument("--occupancy", type=float, help="percent (default: the pacing benchmark's)")
    out.add_argument("--measure-days", type=int, default=14)
    out.set_defaults(handler=cmd_staffing_outbound)
