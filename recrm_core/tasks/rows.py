"""Task rows read as ``Task`` models and written with prebuilt statements; an
erasure's part in the tasks."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Select, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..db import chunks, utcnow
from ..errors import Refused
from ..models import ErasureStep, Task
from ..rawsql import RawSelect
from ..tables import CustomerProjectRow, ProjectRow, TaskRow
from .schemas import ERASED_REASON


def _model(row: TaskRow, code: str, now: dt.datetime) -> Task:
    return _from_columns(vars(row), code, now)


def _from_columns(row: Mapping[str, Any], code: str, now: dt.datetime) -> Task:
    """A task from its columns (an ORM row's, or an ``UPDATE ... RETURNING``'s)."""
    return Task(
        id=row["id"], customer_id=row["customer_id"], project=code, kind=row["kind"],
        owner_staff=row["owner_staff"], due_at=row["due_at"], note=row["note"],
        status=row["status"], rule=row["rule"], interaction_id=row["interaction_id"],
        cancel_reason=row["cancel_reason"], created_by=row["created_by"],
        created_at=row["created_at"], closed_at=row["closed_at"],
        overdue=row["status"] == "open" and row["due_at"] < now)


_RAW_PROJECT_CODE = RawSelect(cast("Select[Any]", select(ProjectRow.__table__.c.code).where(
    ProjectRow.__table__.c.id == bindparam("id"))))
_TASKS = TaskRow.__table__.c
_CLOSE_TASK = (
    update(TaskRow).where(_TASKS.id == bindparam("b_id"), _TASKS.status == bindparam("b_open"))
    .values(status=bindparam("b_done"), interaction_id=bindparam("b_iid"),
            closed_at=bindparam("b_at"))
)
_CLOSE_ONE_TASK = _CLOSE_TASK.returning(*_TASKS)
_PROJECTS = ProjectRow.__table__.c
_CLOSED_TASKS = (
    select(*_TASKS, _PROJECTS.code.label("project_code"))
    .join_from(TaskRow.__table__, ProjectRow.__table__, _PROJECTS.id == _TASKS.project_id)
    .where(_TASKS.id.in_(bindparam("ids", expanding=True)))
)
_LINKS = CustomerProjectRow.__table__.c
_RAW_LINK_OWNER = RawSelect(cast("Select[Any]", select(_LINKS.owner_staff).where(
    _LINKS.customer_id == bindparam("cid"), _LINKS.project_id == bindparam("pid"))))


def _project_code(session: Session, project_id: int) -> str:
    """The code of project ``project_id`` (a prebuilt read: every task written asks)."""
    return str(_RAW_PROJECT_CODE.all(session.connection(), {"id": project_id})[0][0])


def load_tasks(session: Session, query: Any, now: dt.datetime) -> list[Task]:
    """The tasks ``query`` (a select of TaskRow joined with ProjectRow.code) finds."""
    # populate_existing: a task this operation just changed with a Core UPDATE is
    # read again, not taken stale from the session.
    return [_model(row, code, now) for row, code in session.execute(
        query.execution_options(populate_existing=True))]


def _select() -> Any:
    return select(TaskRow, ProjectRow.code).join(ProjectRow, ProjectRow.id == TaskRow.project_id)


_INSERT_TASK = insert(TaskRow).returning(TaskRow.id)


def _close_many(conn: Connection, closes: Sequence[tuple[int, int | None, dt.datetime]],
                at: dt.datetime) -> builtins.list[Task]:
    """Close several open tasks: one UPDATE run once for them all (executemany has no
    RETURNING for an UPDATE), then one read of the closed tasks."""
    closed = conn.execute(_CLOSE_TASK, [
        {"b_id": task_id, "b_open": "open", "b_done": "done", "b_iid": interaction_id,
         "b_at": closed_at} for task_id, interaction_id, closed_at in closes]).rowcount
    if closed != len(closes):
        ids = ", ".join(str(task_id) for task_id, _, _ in closes)
        raise Refused(f"one of tasks {ids} is not open")
    rows = {row["id"]: dict(row) for part in chunks([task_id for task_id, _, _ in closes])
            for row in conn.execute(_CLOSED_TASKS, {"ids": part}).mappings()}
    return [_from_columns(rows[task_id], rows[task_id]["project_code"], at)
            for task_id, _, _ in closes]


def _new_task(customer_id: int, project_id: int, *, kind: str, owner: str,
              due_at: dt.datetime, note: str | None = None, rule: str | None = None,
              rule_key: str | None = None, created_by: str | None = None,
              now: dt.datetime | None = None) -> dict[str, Any]:
    """A new open task's columns."""
    return {"customer_id": customer_id, "project_id": project_id, "kind": kind,
            "owner_staff": owner, "due_at": due_at, "note": note, "status": "open",
            "rule": rule, "rule_key": rule_key, "created_by": created_by,
            "created_at": now or utcnow()}


def _link_owners(session: Session, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The owners of the (customer, project) links ``pairs`` that have one."""
    conn = session.connection()
    if len(pairs) == 1:
        # A single visit logged, the common case: a prebuilt read.
        [(cid, pid)] = pairs
        rows: Any = [(cid, pid, owner) for (owner,) in
                     _RAW_LINK_OWNER.all(conn, {"cid": cid, "pid": pid})]
    else:
        pids = sorted({pid for _, pid in pairs})
        rows = [row for part in chunks(sorted({cid for cid, _ in pairs}))
                for row in conn.execute(
                    select(_LINKS.customer_id, _LINKS.project_id, _LINKS.owner_staff)
                    .where(_LINKS.customer_id.in_(part), _LINKS.project_id.in_(pids)))]
    return {(cid, pid): owner for cid, pid, owner in rows
            if owner is not None and (cid, pid) in pairs}


def erase_tasks(session: Session, ids: builtins.list[int], at: dt.datetime) -> ErasureStep:
    """An erasure's part in the tasks: notes and reasons cleared, open tasks cancelled
    (nobody is to call an erased person); the rows stay for the consultants' figures."""
    kept = 0
    for part in chunks(ids):
        session.execute(
            update(TaskRow).where(TaskRow.customer_id.in_(part), TaskRow.status == "open")
            .values(status="cancelled", closed_at=at)
            .execution_options(synchronize_session=False))
        kept += session.execute(
            update(TaskRow).where(TaskRow.customer_id.in_(part))
            .values(note=None, cancel_reason=ERASED_REASON)
            .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    return ErasureStep(table="tasks", anonymised=kept,
                       basis="kept without note or reason, open ones cancelled: the "
                       "consultants' follow-up figures" if kept else None)
