"""Due times as typed, and periods of days in the business time zone."""

from __future__ import annotations

import builtins
import datetime as dt
import re
from typing import Any

from ..errors import InvalidInput


def parse_due(raw: str, zone: dt.tzinfo, now: dt.datetime) -> dt.datetime:
    """A due time as typed on the command line: ``2026-05-01 18:00`` (business time
    zone unless an offset is given), ``2026-05-01`` (the end of that day), or relative
    ``+3h`` / ``+2d`` (from now); ValueError saying what is understood."""
    text = raw.strip()
    relative = re.fullmatch(r"\+(\d{1,5})\s*([hdm])", text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        delta = {"h": dt.timedelta(hours=amount), "d": dt.timedelta(days=amount),
                 "m": dt.timedelta(minutes=amount)}[unit]
        try:
            return now + delta
        except OverflowError:
            raise ValueError(f"{raw!r} is outside the dates a database keeps") from None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(23, 59), zone).astimezone(dt.UTC)
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{raw!r} is no time: give 2026-05-01 18:00, 2026-05-01, +3h or "
                         "+2d") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise ValueError(f"{raw!r} is outside the dates a database keeps") from None


def period_conditions(column: Any, start: dt.date | None, end: dt.date | None,
                      zone: dt.tzinfo) -> builtins.list[Any]:
    """``column`` from the start of day ``start`` to the end of day ``end`` (business
    time zone; either may be None); InvalidInput for a day no database keeps."""
    conditions: builtins.list[Any] = []
    for field, day, shift in (("from", start, 0), ("to", end, 1)):
        if day is None:
            continue
        try:
            bound = dt.datetime.combine(day + dt.timedelta(days=shift), dt.time(), zone
                                        ).astimezone(dt.UTC)
        except OverflowError:  # year 1 east of UTC, year 9999 west of it
            raise InvalidInput(field, f"{day} is outside the dates a database keeps") from None
        conditions.append(column >= bound if shift == 0 else column < bound)
    return conditions


def _day_bounds(now: dt.datetime, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """Today's start and tomorrow's, in ``zone``, as UTC times."""
    today = now.astimezone(zone).date()
    start = dt.datetime.combine(today, dt.time(), zone)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)
