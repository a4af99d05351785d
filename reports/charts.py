"""Charts as SVG, rendered on the server (pure, no I/O): the trend of a KPI and the
appendix-4 funnel.

A small renderer of our own rather than a plotting library: the pages run under
``Content-Security-Policy: default-src 'self'``, which blocks the inline ``<style>``
and ``<script>`` that charting libraries put into their SVG, while presentation
attributes (``fill``, ``stroke``, ``font-size``) are allowed. So the same document is
inlined in the page, served as a downloadable ``.svg`` and kept with a report. Every
chart carries its numbers as text beside the marks and a ``<title>``/``<desc>`` for
screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

FONT = "WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif"
INK = "#1f2933"
GRID = "#d9dee4"
LINE = "#1a5fb4"
BARS = ("#1a5fb4", "#2a7ab8", "#3b8f8f", "#2e7d32")


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="{FONT}">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>'
        + "".join(body)
        + "</svg>"
    )


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** len(str(int(value))) / 10 if value >= 1 else 0.1
    while step * 10 < value:
        step *= 10
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def trend(
    title: str,
    keys: Sequence[str],
    values: Sequence[float],
    *,
    percent: bool = False,
    target: float | None = None,
    width: int = 720,
    height: int = 320,
) -> str:
    """A line over ``keys`` (days, hours) with every value written above its point; an
    optional dashed ``target`` line (e.g. the 3 % abandon limit)."""
    left, right, top, bottom = 64, 48, 40, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max([*values, target or 0.0, 0.0]))

    def fmt(v: float) -> str:
        return f"{100 * v:.1f}%" if percent else f"{v:,.0f}"

    def y(v: float) -> float:
        return top + plot_h - plot_h * (v / top_value)

    n = len(keys)
    step = plot_w / max(n - 1, 1)
    xs = [left + (i * step if n > 1 else plot_w / 2) for i in range(n)]
    body = [
        f'<text x="{left}" y="24" font-size="16" font-weight="bold" fill="{INK}">'
        f"{escape(title)}</text>"
    ]
    for i in range(5):
        v = top_value * i / 4
        yy = y(v)
        body.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="{INK}">{fmt(v)}</text>'
        )
    if target is not None:
        yy = y(target)
        body.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" '
            f'stroke="#c01c28" stroke-width="2" stroke-dasharray="6 4"/>'
            f'<text x="{width - right}" y="{yy - 6:.1f}" font-size="11" text-anchor="end" '
            f'fill="#c01c28">{fmt(target)}</text>'
        )
    if n:
        points = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in zip(xs, values, strict=True))
        body.append(f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="2.5"/>')
    label_every = max(1, (n + 11) // 12)
    for i, (x, key, v) in enumerate(zip(xs, keys, values, strict=True)):
        body.append(f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="3.5" fill="{LINE}"/>')
        if i % label_every == 0 or i == n - 1:
            body.append(
                f'<text x="{x:.1f}" y="{y(v) - 8:.1f}" font-size="11" text-anchor="middle" '
                f'fill="{INK}">{fmt(v)}</text>'
                f'<text x="{x:.1f}" y="{height - bottom + 18}" font-size="11" '
                f'text-anchor="middle" fill="{INK}">{escape(key)}</text>'
            )
    if not n:
        body.append(
            f'<text x="{width / 2}" y="{height / 2}" font-size="14" text-anchor="middle" '
            f'fill="{INK}">无数据 no data</text>'
        )
    desc = "; ".join(f"{k}: {fmt(v)}" for k, v in zip(keys, values, strict=True))
    return _svg(width, height, title, desc or "no data", body)


def funnel(
    title: str,
    stages: Sequence[tuple[str, int]],
    *,
    width: int = 720,
    bar_height: int = 44,
) -> str:
    """The appendix-4 funnel: one bar per stage (volume, connects, effective, orders), its
    count and its share of the stage before written beside it."""
    left, top = 180, 44
    height = top + len(stages) * (bar_height + 14) + 16
    plot_w = width - left - 190
    first = max((c for _, c in stages), default=0) or 1
    body = [
        f'<text x="16" y="26" font-size="16" font-weight="bold" fill="{INK}">{escape(title)}</text>'
    ]
    previous: int | None = None
    parts = []
    for i, (label, count) in enumerate(stages):
        yy = top + i * (bar_height + 14)
        w = max(2.0, plot_w * count / first)
        x = left + (plot_w - w) / 2
        share = (
            ""
            if previous is None
            else (f" ({100 * count / previous:.1f}%)" if previous else " (-)")
        )
        body.append(
            f'<text x="{left - 12}" y="{yy + bar_height / 2 + 5:.1f}" font-size="14" '
            f'text-anchor="end" fill="{INK}">{escape(label)}</text>'
            f'<rect x="{x:.1f}" y="{yy}" width="{w:.1f}" height="{bar_height}" '
            f'fill="{BARS[i % len(BARS)]}"/>'
            f'<text x="{left + plot_w + 12}" y="{yy + bar_height / 2 + 5:.1f}" '
            f'font-size="14" fill="{INK}">{count:,}{share}</text>'
        )
        parts.append(f"{label}: {count}{share}")
        previous = count
    return _svg(width, height, title, "; ".join(parts), body)
