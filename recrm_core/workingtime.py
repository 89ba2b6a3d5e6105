"""SLA clocks: calendar hours, or working hours on China's working days.

Working days come from ``chinese-calendar`` (the State Council's public holidays and
the make-up working days, 调休, year by year), not from a list kept here. For a year
the library does not know yet (the State Council publishes the next year's calendar
in the autumn), Monday to Friday are working days until the library is upgraded.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

Clock = Literal["calendar", "working"]
#: a bound on the days searched for working time (a year of holidays cannot hide it)
_MAX_DAYS = 3660


@lru_cache(maxsize=4096)
def is_working_day(day: dt.date) -> bool:
    """Whether ``day`` is a working day in mainland China (holidays off, 调休 on)."""
    import chinese_calendar  # loaded by the first working-time SLA, not at start-up

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the library has no calendar for yet
        return day.weekday() < 5


def parse_hhmm(value: str) -> dt.time:
    """``"09:00"`` → 09:00 (the settings' format)."""
    try:
        hours, minutes = value.strip().split(":")
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day like 09:00") from None


def add_hours(start: dt.datetime, hours: float, *, clock: Clock, zone: ZoneInfo,
              day_start: dt.time, day_end: dt.time) -> dt.datetime:
    """``start`` plus ``hours`` of the clock: calendar hours, or working hours between
    ``day_start`` and ``day_end`` (business time zone ``zone``) on working days. The
    result is in UTC. A start outside working time counts from the next working
    moment, so a case opened on Friday evening with 8 working hours is due on Monday
    (or the next working day) at the end of the working day."""
    if clock == "calendar":
        return start + dt.timedelta(hours=hours)
    left = dt.timedelta(hours=hours)
    local = start.astimezone(zone)
    day = local.date()
    for _ in range(_MAX_DAYS):
        if is_working_day(day):
            opens = dt.datetime.combine(day, day_start, zone)
            closes = dt.datetime.combine(day, day_end, zone)
            begin = max(local, opens)
            if begin < closes:
                available = closes - begin
                if left <= available:
                    return (begin + left).astimezone(dt.UTC)
                left -= available
        day += dt.timedelta(days=1)
    raise ValueError(f"no working time within {_MAX_DAYS} days of {start.isoformat()}")

