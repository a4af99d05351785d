"""The reports page (``/floor/reports``): the appendix-4 model for a date range, the trend
and funnel charts inline (the same SVG as the download), CSV and SVG downloads."""

from __future__ import annotations

from datetime import date, datetime

from aiohttp import web

from identity.access import Action
from reports.charts import funnel, trend
from reports.export import KEY_HEADERS, cells, headers, to_csv
from reports.model import KPI_LABELS, Counts, Grouping, Kpi, ReportRow
from reports.store import ReportQuery, ReportStore
from web.auth import render, requires
from web.context import CTX_KEY

GROUPS = (Grouping.DAY, Grouping.HOUR, Grouping.AGENT, Grouping.CAMPAIGN, Grouping.LIST,
          Grouping.CALLER_ID)  # fmt: skip


class BadQuery(ValueError):
    """A report's parameters do not make a report (the message names the field)."""


def _query(request: web.Request) -> ReportQuery:
    tz = request.app[CTX_KEY].dialer().policy.tz
    today = datetime.now(tz).date()
    q = request.query
    try:
        end = date.fromisoformat(q["to"]) if q.get("to") else today
        start = date.fromisoformat(q["from"]) if q.get("from") else end
    except ValueError as exc:
        raise BadQuery(f"from/to: a date like 2026-11-03 ({exc})") from exc
    try:
        group = Grouping(q.get("by", "day"))
    except ValueError as exc:
        raise BadQuery(f"by: one of {', '.join(g.value for g in GROUPS)}") from exc
    return ReportQuery(start, end, group, q.get("campaign") or None)


async def _rows(request: web.Request, query: ReportQuery) -> list[ReportRow]:
    stack = request.app[CTX_KEY].dialer()
    store = ReportStore(stack.stores.engine, stack.policy.tz)
    await store.create_schema()
    await store.refresh()
    return await store.report(query)


def _charts(rows: list[ReportRow], query: ReportQuery, kpi: Kpi) -> tuple[str, str]:
    span = f"{query.start}" if query.start == query.end else f"{query.start} ~ {query.end}"
    zh, en = KPI_LABELS[kpi]
    line = trend(
        f"{zh} {en} {span}",
        [r.key for r in rows],
        [r.counts.kpi(kpi) for r in rows],
        percent=kpi is not Kpi.VOLUME,
    )
    total = Counts()
    for r in rows:
        total = total + r.counts
    steps = funnel(
        f"外呼漏斗 funnel {span}",
        [
            ("外呼量 volume", total.dialled),
            ("接通量 connects", total.connects),
            ("有效通话 effective", total.effective),
            ("订单量 orders", total.orders),
        ],
    )
    return line, steps


def _kpi(request: web.Request) -> Kpi:
    try:
        return Kpi(request.query.get("kpi", Kpi.CONNECT_RATE.value))
    except ValueError as exc:
        raise BadQuery("kpi: one of " + ", ".join(k.value for k in Kpi)) from exc


@requires(Action.CAMPAIGNS_READ)
async def reports_page(request: web.Request) -> web.StreamResponse:
    try:
        query, kpi = _query(request), _kpi(request)
    except (BadQuery, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    rows = await _rows(request, query)
    line, steps = _charts(rows, query, kpi)
    stack = request.app[CTX_KEY].dialer()
    return await render(
        request,
        "floor/reports.html",
        {
            "query": query,
            "kpi": kpi.value,
            "kpis": [(k.value, f"{KPI_LABELS[k][0]} {KPI_LABELS[k][1]}") for k in Kpi],
            "groups": [(g.value, KEY_HEADERS[g]) for g in GROUPS],
            "campaigns": sorted(stack.runner.campaigns),
            "headers": headers(query.group),
            "rows": [cells(r) for r in rows],
            "trend_svg": line,
            "funnel_svg": steps,
            "params": request.query_string,
        },
    )


@requires(Action.CAMPAIGNS_READ)
async def reports_csv(request: web.Request) -> web.StreamResponse:
    try:
        query = _query(request)
    except (BadQuery, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    rows = await _rows(request, query)
    name = f"report-{query.group.value}-{query.start}-{query.end}.csv"
    return web.Response(
        body=to_csv(rows, query.group).encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


@requires(Action.CAMPAIGNS_READ)
async def reports_svg(request: web.Request) -> web.StreamResponse:
    try:
        query, kpi = _query(request), _kpi(request)
    except (BadQuery, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    rows = await _rows(request, query)
    line, steps = _charts(rows, query, kpi)
    which = request.match_info["chart"]
    name = f"{which}-{query.start}-{query.end}.svg"
    return web.Response(
        body=(steps if which == "funnel" else line).encode("utf-8"),
        headers={
            "Content-Type": "image/svg+xml; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


def install_reports(app: web.Application) -> None:
    app.router.add_get("/floor/reports", reports_page)
    app.router.add_get("/floor/reports.csv", reports_csv)
    app.router.add_get("/floor/reports/{chart:trend|funnel}.svg", reports_svg)
