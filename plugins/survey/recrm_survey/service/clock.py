"""Time: aware datetimes, calendar months, the month of a period."""

from __future__ import annotations

import calendar
import datetime as dt

from recrm_core import (
    CRM,
    InvalidInput,
    utcnow,
)


def _aware(value: dt.datetime | None, field: str) -> dt.datetime:
    if value is None:
        return utcnow()
    if value.tzinfo is None:
        raise InvalidInput(field, f"{field} needs a time zone")
    return value


def add_months(at: dt.datetime, months: int, crm: CRM) -> dt.datetime:
    """``at`` plus whole calendar months in the business time zone; the day is
    clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    local = at.astimezone(crm.config.zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(dt.UTC)


def period_month(at: dt.datetime, crm: CRM) -> str:
    return at.astimezone(crm.config.zone).strftime("%Y-%m")
