"""Reading and writing case rows: the prebuilt statements on the driver's cursor, the
API model built from a row or from the values written, and the locked row of a change."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..db import valid_id
from ..errors import NotFound, Refused
from ..models import Case, CaseHistoryEntry, trusted
from ..rawsql import RawSelect, RawWrite
from ..tables import CaseHistoryRow, CaseRow, ProjectRow
from .rules import ACTIVE, allowed_actions

#: the Case fields read straight from the cases row, in this order
_CASE_FIELDS = ("id", "customer_id", "category", "priority", "status", "subject",
                "description", "department", "assignee", "escalation_level", "channel",
                "incident_id", "sla_due_at", "opened_at", "resolved_at", "closed_at")


def _to_model(
    row: CaseRow,
    code: str | None,
    now: dt.datetime,
    history: builtins.list[CaseHistoryEntry] | None = None,
    levels: Sequence[str] = (),
) -> Case:
    return _model_of({name: getattr(row, name) for name in _CASE_FIELDS}, code, now,
                     history, levels)


def _model_of(
    values: Mapping[str, Any],
    code: str | None,
    now: dt.datetime,
    history: builtins.list[CaseHistoryEntry] | None = None,
    levels: Sequence[str] = (),
) -> Case:
    """The API model of a case from its columns (``_CASE_FIELDS``): the one place a
    Case is assembled, from an ORM row, a Core read or the values just written.

    Every value is our own column's or what ``CaseIn`` validated on the way in, so
    the model is built without validating again (:func:`~recrm_core.models.trusted`:
    1.5 against 6.5 µs); tests compare it with validated construction."""
    level = values["escalation_level"]
    return trusted(Case, {
        "id": values["id"],
        "customer_id": values["customer_id"],
        "project": code,
        "category": values["category"],
        "priority": values["priority"],
        "status": values["status"],
        "subject": values["subject"],
        "description": values["description"],
        "department": values["department"],
        "assignee": values["assignee"],
        "escalation_level": level,
        "level": levels[min(level, len(levels) - 1)] if levels else None,
        "channel": values["channel"],
        "incident_id": values["incident_id"],
        "sla_due_at": values["sla_due_at"],
        "overdue": values["status"] in ACTIVE and values["sla_due_at"] < now,
        "opened_at": values["opened_at"],
        "resolved_at": values["resolved_at"],
        "closed_at": values["closed_at"],
        "history": history or [],
    })


_HT = cast(Table, CaseHistoryRow.__table__)
_CT = cast(Table, CaseRow.__table__)
_PT = cast(Table, ProjectRow.__table__)
_HISTORY_FIELDS = ("action", "from_value", "to_value", "note", "actor_staff", "actor_role", "at")
# Prebuilt Core statements: every opening and status change reads the history and the
# project code back, and building the ORM statements and objects cost more than the
# reads (most of ``cases.open``'s time). The reads run on the driver's cursor
# (RawSelect): an opening is one unit of work of a few statements, and SQLAlchemy's
# execution path cost more than each of them.
# Insertion order is the order things happened in, even for a back-dated opening.
_RAW_HISTORY = RawSelect(
    select(*(_HT.c[name] for name in _HISTORY_FIELDS))
    .where(_HT.c.case_id == bindparam("case_id")).order_by(_HT.c.id)
)
_RAW_PROJECT_CODE = RawSelect(select(_PT.c.code).where(_PT.c.id == bindparam("id")))
#: a case's columns (``_CASE_FIELDS``), its project's code and its history
#: (``_HISTORY_FIELDS``; a row per entry, in order, the entry NULL for none): one
#: statement where two would be (a round trip on PostgreSQL)
_RAW_CASE = RawSelect(
    select(*(_CT.c[name] for name in _CASE_FIELDS), _PT.c.code,
           *(_HT.c[name] for name in _HISTORY_FIELDS))
    .outerjoin(_PT, _PT.c.id == _CT.c.project_id)
    .outerjoin(_HT, _HT.c.case_id == _CT.c.id)
    .where(_CT.c.id == bindparam("id"))
    .order_by(_HT.c.id)
)
#: a case's columns (``_CASE_FIELDS``) and its project's id, the row locked (FOR UPDATE
#: serialises concurrent changes of one case on PostgreSQL, as ``_lock`` does)
_RAW_LOCK = RawSelect(
    select(*(_CT.c[name] for name in _CASE_FIELDS), _CT.c.project_id)
    .where(_CT.c.id == bindparam("id")).with_for_update())
#: what a status change sets (``CaseService.transition_changes``)
TRANSITION_FIELDS = ("status", "updated_at", "level_since", "resolved_at", "closed_at",
                     "sla_due_at")
# The writes too run on the driver's cursor (RawWrite).
_INSERT_CASE = RawWrite(insert(_CT).returning(_CT.c.id))
_SET_PLACE = RawWrite(
    update(_CT).where(_CT.c.id == bindparam("b_id"))
    .values(department=bindparam("b_department"), assignee=bindparam("b_assignee")))
_INSERT_HISTORY = RawWrite(insert(_HT))
_SET_STATUS = RawWrite(
    update(_CT).where(_CT.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}") for name in TRANSITION_FIELDS}))


def _history_of(conn: Connection, case_id: int) -> builtins.list[CaseHistoryEntry]:
    return [trusted(CaseHistoryEntry, dict(zip(_HISTORY_FIELDS, r, strict=True)))
            for r in _RAW_HISTORY.all(conn, {"case_id": case_id})]


def _entry(r: CaseHistoryRow) -> CaseHistoryEntry:
    return CaseHistoryEntry(action=r.action, from_value=r.from_value, to_value=r.to_value,
                            note=r.note, actor_staff=r.actor_staff, actor_role=r.actor_role,
                            at=r.at)


def _full_model(session: Session, row: CaseRow, now: dt.datetime,
                levels: Sequence[str] = ()) -> Case:
    """``row`` as it is in the session, with its history as stored."""
    session.flush()  # what a hook added through the ORM, as a session read would
    conn = session.connection()
    return _to_model(row, _project_code(conn, row.project_id), now, _history_of(conn, row.id),
                     levels)


def _stored_model(session: Session | Connection, case_id: int, now: dt.datetime,
                  levels: Sequence[str]) -> Case:
    """The case as stored now, after whatever the hooks wrote (ORM or Core): what the
    caller will see committed. Two reads instead of refreshing the ORM row, which
    cost more than the rest of an opening. ``session``: a session (flushed first),
    or a unit of work's ``driver`` (flushed by it)."""
    if isinstance(session, Session):
        session.flush()
        conn = session.connection()
    else:
        conn = session
    found = _RAW_CASE.all(conn, {"id": case_id})
    if not found:
        raise NotFound(f"no case {case_id}")
    width = len(_CASE_FIELDS)
    history = [trusted(CaseHistoryEntry, dict(zip(_HISTORY_FIELDS, r[width + 1:], strict=True)))
               for r in found if r[width + 1] is not None]  # (action is NOT NULL)
    return _model_of(dict(zip(_CASE_FIELDS, found[0][:width], strict=True)), found[0][width],
                     now, history, levels)


def _locked_values(conn: Connection, case_id: int) -> dict[str, Any]:
    """The case's columns (``_CASE_FIELDS`` and ``project_id``), its row locked as
    :func:`_lock` locks it, on the driver's cursor."""
    found = _RAW_LOCK.all(conn, {"id": case_id}) if valid_id(case_id) else []
    if not found:
        raise NotFound(f"no case {case_id}")
    return dict(zip((*_CASE_FIELDS, "project_id"), found[0], strict=True))


def _project_code(conn: Connection, project_id: int | None) -> str | None:
    if project_id is None:
        return None
    found = _RAW_PROJECT_CODE.all(conn, {"id": project_id})
    return found[0][0] if found else None


def _lock(session: Session, case_id: int) -> CaseRow:
    # FOR UPDATE serialises concurrent changes of one case on PostgreSQL; SQLite has
    # a single writer, and a stale snapshot there fails instead of overwriting.
    if not valid_id(case_id):
        raise NotFound(f"no case {case_id}")
    row = session.scalar(select(CaseRow).where(CaseRow.id == case_id).with_for_update())
    if row is None:
        raise NotFound(f"no case {case_id}")
    return row


def _refuse(row: CaseRow, action: str) -> Refused:
    return _refused(row.id, row.status, action)


def _refused(case_id: int, status: str, action: str) -> Refused:
    allowed = ", ".join(allowed_actions(status)) or "nothing"
    return Refused(f"case {case_id} is {status}: cannot {action}; allowed: {allowed}")


