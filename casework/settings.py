"""The site's casework settings: complaint categories and deadlines, the quality scorecard.

They live in the site's policy file (tables ``[complaints]`` and ``[quality]``) on
top of the packaged ``default_casework.toml``. Every fault is a
:class:`SettingsError` naming the file, the line and the field
(``policy.toml line 41: quality.items[2].points: ...``). Pure apart from reading
the file named to :func:`load_settings` and the packaged default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from casework.cases import CaseRules, Category, Step
from casework.quality import Item, Scorecard

DEFAULT_FILE = "default_casework.toml"
_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_AGENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}")


class SettingsError(ValueError):
    def __init__(self, source: str, line: int | None, key: str, problem: str) -> None:
        self.source, self.line, self.key, self.problem = source, line, key, problem
        where = source if line is None else f"{source} line {line}"
        super().__init__(f"{where}: {key}: {problem}")


@dataclass(frozen=True, slots=True)
class CaseworkSettings:
    cases: CaseRules
    scorecard: Scorecard
    source: str


def default_text() -> str:
    return resources.files("casework").joinpath(DEFAULT_FILE).read_text("utf-8")


@cache
def default_settings() -> CaseworkSettings:
    return parse_settings("", "<none>")


def load_settings(path: str | Path | None) -> CaseworkSettings:
    """The settings of a policy file (its other tables are the compliance policy's)."""
    if path is None:
        return default_settings()
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(str(p), None, "file", f"cannot read: {exc}") from exc
    return parse_settings(text, str(p))


def parse_settings(text: str, source: str) -> CaseworkSettings:
    """Site text over the packaged defaults; faults in the site text carry its line."""
    base_text = default_text()
    base = tomllib.loads(base_text)
    try:
        site = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(source, None, "file", f"not valid TOML: {exc}") from exc
    merged = {k: dict(base[k]) for k in ("complaints", "quality")}
    for table in ("complaints", "quality"):
        given = site.get(table)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise SettingsError(source, _Lines(text).key_line(table, ""), table, "must be a table")
        for key, value in given.items():
            if isinstance(value, dict) and isinstance(merged[table].get(key), dict):
                merged[table][key] = {**merged[table][key], **value}
            else:
                merged[table][key] = value
    return _Builder(source, text, base_text, site).build(merged)


class _Lines:
    """Finds the line of a key in TOML text (tomllib gives values, not positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _tables(self) -> list[tuple[int, str]]:
        out = []
        for n, line in enumerate(self.lines, start=1):
            m = re.match(r"\s*(\[\[?)\s*([A-Za-z0-9_.\"-]+)\s*\]\]?", line)
            if m:
                out.append((n, m.group(2)))
        return out

    def key_line(self, table: str, key: str, index: int | None = None) -> int | None:
        """The line of ``key`` in ``[table]`` (the ``index``-th ``[[table]]``), else the
        table's header line, else None."""
        headers = self._tables()
        starts = [(n, i) for i, (n, name) in enumerate(headers) if name == table]
        if index is not None:
            starts = starts[index : index + 1]
        for start, pos in starts:
            end = headers[pos + 1][0] if pos + 1 < len(headers) else len(self.lines) + 1
            if not key:
                return start
            for n in range(start + 1, end):
                if re.match(rf"\s*\"?{re.escape(key)}\"?\s*=", self.lines[n - 1]):
                    return n
            if index is not None:
                return start
        # A dotted key in a parent table (``[quality]`` holding ``teams.north = ...``).
        for n, line in enumerate(self.lines, start=1):
            if key and re.match(rf"\s*{re.escape(key)}\s*=", line):
                return n
        return starts[0][0] if starts else None


class _Builder:
    def __init__(self, source: str, text: str, base_text: str, site: Mapping[str, Any]) -> None:
        self.source = source
        self.site = _Lines(text)
        self.base = _Lines(base_text)
        self.given = site

    def fail(self, table: str, key: str, problem: str, index: int | None = None) -> SettingsError:
        top, _, rest = table.partition(".")
        in_site = top in self.given and (not rest or rest in self.given[top])
        lines, source = (self.site, self.source) if in_site else (self.base, DEFAULT_FILE)
        line = lines.key_line(table, key, index)
        name = table if index is None else f"{table}[{index}]"
        return SettingsError(source, line, f"{name}.{key}" if key else name, problem)

    def build(self, d: Mapping[str, Any]) -> CaseworkSettings:
        return CaseworkSettings(self.cases(d["complaints"]), self.card(d["quality"]), self.source)

    def known(
        self, table: str, data: Mapping[str, Any], keys: set[str], index: int | None = None
    ) -> None:
        for key in data:
            if key not in keys:
                raise self.fail(
                    table, key, f"unknown key (known here: {', '.join(sorted(keys))})", index
                )

    def cases(self, c: Mapping[str, Any]) -> CaseRules:
        self.known("complaints", c, {"deadlines", "categories"})
        deadlines = c.get("deadlines", {})
        if not isinstance(deadlines, dict):
            raise self.fail("complaints", "deadlines", "must be a table of hours per step")
        steps = {s.value: s for s in Step if s is not Step.REGISTERED}
        limits: dict[Step, timedelta] = {}
        for key, value in deadlines.items():
            if key not in steps:
                raise self.fail(
                    "complaints.deadlines", key, f"unknown step (steps: {', '.join(steps)})"
                )
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not (0 < value <= 24 * 365)
            ):
                raise self.fail(
                    "complaints.deadlines", key, f"must be hours above 0, got {value!r}"
                )
            limits[steps[key]] = timedelta(hours=value)
        categories: dict[str, Category] = {}
        raw = c.get("categories", [])
        if not isinstance(raw, list) or not raw:
            raise self.fail("complaints", "categories", "must be a non-empty list of tables")
        for i, cat in enumerate(raw):
            table = "complaints.categories"
            if not isinstance(cat, dict):
                raise self.fail(table, "", "must be a table", i)
            self.known(table, cat, {"code", "title", "telemarketing"}, i)
            code = self.code(table, cat, i)
            if code in categories:
                raise self.fail(table, "code", f"duplicate category {code!r}", i)
            tm = cat.get("telemarketing", True)
            if not isinstance(tm, bool):
                raise self.fail(table, "telemarketing", f"must be true or false, got {tm!r}", i)
            categories[code] = Category(code, self.title(table, cat, i), tm)
        return CaseRules(categories, limits)

    def code(self, table: str, data: Mapping[str, Any], i: int) -> str:
        code = data.get("code")
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise self.fail(
                table, "code", f"must be a code like data_leak (a-z, 0-9, _), got {code!r}", i
            )
        return code

    def title(self, table: str, data: Mapping[str, Any], i: int) -> str:
        title = data.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 200:
            raise self.fail(table, "title", f"must be non-empty text, got {title!r}", i)
        return title

    def decimal(
        self,
        table: str,
        data: Mapping[str, Any],
        key: str,
        i: int | None,
        *,
        default: Decimal | None = None,
        high: int = 100,
    ) -> Decimal:
        value = data.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(table, key, f"must be a number of points, got {value!r}", i)
        amount = Decimal(str(value))
        if not Decimal(0) <= amount <= high or amount != amount.quantize(Decimal("0.01")):
            raise self.fail(
                table, key, f"must be 0 to {high} points in steps of 0.01, got {value!r}", i
            )
        return amount

    def card(self, q: Mapping[str, Any]) -> Scorecard:
        self.known("quality", q, {"base", "sample_per_agent", "sample_seed", "teams", "items"})
        base = self.decimal("quality", q, "base", None, high=1000)
        n = q.get("sample_per_agent")
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1000:
            raise self.fail("quality", "sample_per_agent", f"must be 0 to 1000, got {n!r}")
        seed = q.get("sample_seed")
        if not isinstance(seed, str) or not seed:
            raise self.fail("quality", "sample_seed", f"must be non-empty text, got {seed!r}")
        teams = self.teams(q.get("teams", {}))
        items: dict[str, Item] = {}
        raw_items = q.get("items", [])
        if not isinstance(raw_items, list) or not raw_items:
            raise self.fail("quality", "items", "must be a non-empty list of tables")
        for i, it in enumerate(raw_items):
            table = "quality.items"
            if not isinstance(it, dict):
                raise self.fail(table, "", "must be a table", i)
            self.known(table, it, {"code", "title", "section", "points", "extra", "case"}, i)
            code = self.code(table, it, i)
            if code in items:
                raise self.fail(table, "code", f"duplicate item {code!r}", i)
            points = self.decimal(table, it, "points", i)
            if points == 0:
                raise self.fail(table, "points", "must be above 0 (a deduction)", i)
            section = it.get("section", "")
            if not isinstance(section, str) or len(section) > 32:
                raise self.fail(table, "section", f"must be short text, got {section!r}", i)
            opens = it.get("case", False)
            if not isinstance(opens, bool):
                raise self.fail(table, "case", f"must be true or false, got {opens!r}", i)
            items[code] = Item(
                code,
                self.title(table, it, i),
                points,
                self.decimal(table, it, "extra", i, default=Decimal(0)),
                section,
                opens,
            )
        return Scorecard(base, items, n, seed, teams)

    def teams(self, raw_teams: Any) -> dict[str, tuple[str, ...]]:
        teams: dict[str, tuple[str, ...]] = {}
        if not isinstance(raw_teams, dict):
            raise self.fail("quality", "teams", "must be a table: team = [agent ids]")
        seen: dict[str, str] = {}
        for team, members in raw_teams.items():
            if not _AGENT.fullmatch(team):
                raise self.fail("quality.teams", team, "is not a team name")
            if not isinstance(members, list) or not all(
                isinstance(m, str) and _AGENT.fullmatch(m) for m in members
            ):
                raise self.fail("quality.teams", team, "must be a list of agent ids")
            for m in members:
                if m in seen:
                    raise self.fail("quality.teams", team, f"agent {m} is also in {seen[m]}")
                seen[m] = team
            teams[team] = tuple(members)
        return teams
