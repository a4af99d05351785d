"""A report's rows as CSV and as a text table (pure, no I/O).

Both carry the same columns (``reports.model.COLUMNS``) under a Chinese header with the
English name beside it; rates are written as per cent. The CSV starts with a UTF-8 byte
order mark so that spreadsheet programs used on Chinese desktops read the headers right.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence

from reports.model import COLUMNS, Grouping, ReportRow, format_cell

KEY_HEADERS: dict[Grouping, str] = {
    Grouping.TOTAL: "合计 total",
    Grouping.DAY: "日期 day",
    Grouping.HOUR: "时段 hour",
    Grouping.AGENT: "座席 agent",
    Grouping.CAMPAIGN: "活动 campaign",
    Grouping.LIST: "名单 list",
    Grouping.CALLER_ID: "主叫号码 caller ID",
}


def headers(group: Grouping) -> list[str]:
    return [KEY_HEADERS[group], *(f"{zh} {en}" for _, zh, en in COLUMNS)]


def cells(row: ReportRow) -> list[str]:
    return [row.key, *(format_cell(attr, getattr(row.model, attr)) for attr, _, _ in COLUMNS)]


def to_csv(rows: Sequence[ReportRow], group: Grouping) -> str:
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers(group))
    for row in rows:
        writer.writerow(cells(row))
    return buf.getvalue()


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def to_text(rows: Sequence[ReportRow], group: Grouping) -> str:
    """An aligned table; Chinese headers printed as text (two columns per character)."""
    table = [[KEY_HEADERS[group], *(zh for _, zh, _ in COLUMNS)]] + [cells(r) for r in rows]
    widths = [max(_width(line[i]) for line in table) for i in range(len(table[0]))]
    out = []
    for n, line in enumerate(table):
        parts = [
            cell + " " * (w - _width(cell)) if i == 0 else " " * (w - _width(cell)) + cell
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(parts).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    if not rows:
        out.append("(no calls in this range)")
    return "\n".join(out) + "\n"
