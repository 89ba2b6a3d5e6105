"""A moment given on the command line (``--at``, ``--now``): one parser for every
command, so that the grammar, the business time zone and the errors are the same."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import click


def local_moment(value: str | None, zone: ZoneInfo, option: str) -> dt.datetime | None:
    """``2026-01-31`` or ``2026-01-31T08:00`` (or ``2026-01-31 08:00``) in the business
    time zone ``zone``, or with an offset, as UTC; None for None. A usage error (exit 2)
    names ``option`` when the text is no such moment or lies outside what a datetime
    holds once moved to UTC (``0001-01-01`` east of UTC)."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date or date-time (e.g. 2026-01-31 or 2026-01-31T08:00)",
            param_hint=option) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise click.BadParameter(f"{value!r} is out of range", param_hint=option) from None
