"""The case rules: statuses, transitions, the overdue test, input validation and
the small value rules (place, raised priority) the service and escalation share."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_

from ..db import utcnow
from ..errors import InvalidInput
from ..models import CaseIn, CaseStatus, IntakeChannel, Priority, first_error
from ..tables import CaseRow
from ..values import optional_code, zoned

STATUSES: tuple[str, ...] = get_args(CaseStatus)
INTAKE_CHANNELS: tuple[str, ...] = get_args(IntakeChannel)
PRIORITIES: tuple[str, ...] = get_args(Priority)
#: statuses in which the SLA runs (a case in them can be overdue, moved or escalated)
ACTIVE: tuple[str, ...] = ("open", "in_progress", "reopened")

#: action -> (statuses it is allowed from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("open", "reopened"), "in_progress"),
    "resolve": (("open", "in_progress", "reopened"), "resolved"),
    "close": (("resolved",), "closed"),
    "reopen": (("resolved", "closed"), "reopened"),
}


def allowed_actions(status: str) -> builtins.list[str]:
    """What may be done to a case in ``status`` (for refusals and the CLI)."""
    actions = [a for a, (sources, _) in TRANSITIONS.items() if status in sources]
    if status in ACTIVE:
        actions += ["transfer", "escalate"]
    return actions


def overdue_clause(now: dt.datetime) -> ColumnElement[bool]:
    """SQL: the case is still active and its SLA due time has passed at ``now``.

    Served by the (status, sla_due_at) index.
    """
    return and_(CaseRow.status.in_(ACTIVE), CaseRow.sla_due_at < now)


def validate_case(data: CaseIn | Mapping[str, Any]) -> CaseIn:
    if isinstance(data, CaseIn):
        return data
    try:
        return CaseIn.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidInput(*first_error(exc)) from None


def _aware(value: dt.datetime | None, field: str) -> dt.datetime:
    try:
        return zoned(value, field) or utcnow()
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


def _code(raw: str | None, field: str, limit: int) -> str | None:
    try:
        return optional_code(raw, limit)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


def _place(department: str | None, assignee: str | None) -> str:
    return f"{department or '-'}/{assignee or '-'}"


def _raised(priority: str) -> str:
    i = PRIORITIES.index(priority)
    return PRIORITIES[min(i + 1, len(PRIORITIES) - 1)]


