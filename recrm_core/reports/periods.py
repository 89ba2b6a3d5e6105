"""Periods in SQL: the label of the month, quarter or year a timestamp falls in, and
the half-open range of an inclusive ``--from``/``--to`` pair of days.

Labels sort as text and read the same everywhere: ``2026-03``, ``2026-Q1``,
``2026``, ``all`` (survey's ``fold`` speaks the same vocabulary).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, literal

from ..errors import InvalidInput
from .model import BY_CHOICES, By


def period_label(column: Any, by: By, dialect: str) -> ColumnElement[str]:
    """The SQL expression labelling ``column`` (a timestamp) with its period."""
    if by not in BY_CHOICES:
        raise InvalidInput("by", f"by {by!r} is not one of {', '.join(BY_CHOICES)}")
    if by == "all":
        return literal("all", String)
    if dialect == "postgresql":
        pattern = {"month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}[by]
        return func.to_char(column, pattern)
    if by == "quarter":
        month = cast(func.strftime("%m", column), String)
        # ``//``: SQLAlchemy 2's ``/`` is true division (2026-Q1.3333 for February)
        quarter = (cast(month, _int()) + 2) // 3
        return func.strftime("%Y", column) + "-Q" + cast(quarter, String)
    return func.strftime({"month": "%Y-%m", "year": "%Y"}[by], column)


def _int() -> Any:
    from sqlalchemy import Integer

    return Integer


def check_period(start: dt.date | None, end: dt.date | None) -> None:
    """InvalidInput (field ``to``, the option ``--to`` on the command line) for a period
    that ends before it starts: the one rule of every report and listing that takes
    ``--from``/``--to``, the plugins' included."""
    if start is not None and end is not None and end < start:
        raise InvalidInput("to", f"the period ends ({end}) before it starts ({start})")


def day_range(start: dt.date | None, end: dt.date | None
              ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[start 00:00, end+1 00:00)`` for the inclusive days; refuses an end before
    the start."""
    check_period(start, end)
    lo = dt.datetime.combine(start, dt.time()) if start is not None else None
    # The calendar's last day bounds nothing (there is no day after it to stop at).
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time()) \
        if end is not None and end < dt.date.max else None
    return lo, hi


def fold(month: str, by: By) -> str:
    """``"2025-05"`` as the period it belongs to."""
    if by == "month":
        return month
    if by == "quarter":
        return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"
    if by == "year":
        return month[:4]
    return "all"
