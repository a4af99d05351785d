"""Public holidays and adjusted working days (调休) for the calling windows (pure).

China's days off (春节, 国庆节 ...) and the weekend days worked in exchange come
from the maintained ``chinesecalendar`` package, which is updated every year
once the State Council publishes the next year's schedule; a site may add days
off and working days of its own in the policy (``[calendar]``), e.g. for a year
the package does not cover yet. On a day off no customer is called; an
adjusted working day is called like a Monday, whatever weekday it falls on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

# Used when a day off comes from the site's own list.
SITE_DAY_OFF = "公司休息日"


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    days_off: Mapping[date, str] = field(default_factory=dict)  # date -> holiday name
    workdays: frozenset[date] = frozenset()
    covered_years: frozenset[int] = frozenset()  # years with published national data

    def day_off(self, day: date) -> str | None:
        """The holiday's name when ``day`` is a day off, else None."""
        return self.days_off.get(day)

    def calling_weekday(self, day: date) -> int:
        """The weekday whose calling days apply: Monday on an adjusted working day."""
        return 0 if day in self.workdays else day.weekday()

    def covers(self, day: date) -> bool:
        return day.year in self.covered_years


NO_CALENDAR = WorkCalendar()


def china_calendar(
    extra_days_off: Iterable[date] = (), extra_workdays: Iterable[date] = ()
) -> WorkCalendar:
    """China's public holidays and adjusted working days, plus the site's own days."""
    import chinese_calendar as cc

    days_off: dict[date, str] = {}
    for day, english in cc.holidays.items():
        days_off[day] = cc.Holiday(english).chinese
    for day in extra_days_off:
        days_off.setdefault(day, SITE_DAY_OFF)
    workdays = frozenset(cc.workdays) | frozenset(extra_workdays)
    years = frozenset(d.year for d in cc.holidays)
    return WorkCalendar(days_off, workdays - frozenset(extra_days_off), years)


def site_calendar(days_off: Iterable[date] = (), workdays: Iterable[date] = ()) -> WorkCalendar:
    """Only the site's own days (national holidays switched off in the policy)."""
    off = {d: SITE_DAY_OFF for d in days_off}
    return WorkCalendar(off, frozenset(workdays) - frozenset(off), frozenset())
