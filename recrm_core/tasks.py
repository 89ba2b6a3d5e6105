"""Follow-up tasks (``crm.tasks``, ``recrm tasks``): planned contacts with a customer at a
project, so no prospect is forgotten.

A task has an owner (a member of staff), a kind (call, visit, wechat, ...), a due time
and a note; it is ``open`` until ``done`` (by the interaction that did it, when known)
or ``cancelled`` (with a reason). Logging an interaction of the task's kind for its
customer and project by its owner closes the oldest open task it fulfils (the core's
own ``recrm_interactions_logged`` implementation, :mod:`recrm_core.followups`).

Two rules create tasks (``[followup]`` settings): after a customer's first visit to a
project, a call within ``after_visit_hours`` (at once, when the visit is logged, and
by the sweep for visits nobody followed up); a prospect with no interaction at a
project for ``prospect_days`` gets a call for its owner. ``recrm tasks sweep`` (for
cron) creates what is due; each rule's task carries a ``rule_key`` the database keeps
unique, so a sweep run twice, or two sweeps at once, create each task once.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast, get_args

from pydantic import Field, ValidationError, field_validator
from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from .access import WRITERS, Scope, check_writer, require_role, task_for
from .customers import resolve_id
from .db import RawSelect, UnitOfWork, chunks, utcnow
from .directory import refused_staff
from .errors import Forbidden, InvalidInput, NotFound, Refused
from .models import (
    Actor,
    BodyText,
    Code,
    ErasureStep,
    Task,
    TaskStatus,
    _Model,
    _Out,
    first_error,
)
from .projects import known_project_id, project_code
from .tables import CustomerProjectRow, InteractionRow, ProjectRow, StaffRow, TaskRow
from .upserting import insert_or_ignore, insert_or_ignore_many
from .values import optional_code, required_code, required_text, zoned

if TYPE_CHECKING:
    from .crm import CRM

STATUSES: tuple[str, ...] = get_args(TaskStatus)
#: the rules that create tasks, by the name a task's ``rule`` holds
AFTER_VISIT = "after_visit"
PROSPECT_IDLE = "prospect_idle"
#: who reads tasks (partners never: a task is about a customer's follow-up)
TASK_READERS = (*WRITERS, "analyst")
#: roles that act on anyone's tasks; a consultant (sales) or service acts on their own
TASK_MANAGERS = ("admin", "manager")
#: roles that read (and act on) only their own tasks
OWN_TASKS_ONLY = ("sales", "service")
#: what stands in for an erased task's free text
ERASED_REASON = "(erased)"


class FirstVisit(NamedTuple):
    """A customer's first visit to a project, as the visit rule takes it."""

    customer_id: int
    project_id: int
    at: dt.datetime
    staff: str | None


class TaskIn(_Model):
    """A follow-up task to add (``recrm tasks add``, ``POST /v1/tasks``)."""

    customer_id: int = Field(ge=1, le=2**31 - 1, description="the customer")
    project: str = Field(min_length=1, max_length=64, description="the project's code")
    kind: str = Field(description="call, visit, wechat, sms, email, ... (an interaction "
                      "kind: logging one of it by the owner closes the task)")
    due_at: dt.datetime = Field(description="when it is due (with a UTC offset)")
    staff: Code = Field(default=None, description="the owner; default: whoever adds it")
    note: BodyText = Field(default=None, description="what to do or say")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: Any) -> str:
        return required_code(v, "task kind", 32).lower()

    @field_validator("due_at")
    @classmethod
    def _zoned(cls, v: dt.datetime) -> dt.datetime:
        zoned(v, "due_at")
        return v.astimezone(dt.UTC)


class TaskDoneIn(_Model):
    """Mark a task done, with the interaction that did it, if any."""

    interaction_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                       description="the customer's interaction that did it")


class TaskCancelIn(_Model):
    """Cancel a task, saying why."""

    reason: str = Field(min_length=1, max_length=500, description="why it is not done")


class TaskSweep(_Out):
    """What a ``tasks sweep`` created, by rule."""

    after_visit: int = Field(description="calls after a first visit")
    prospect_idle: int = Field(description="calls for prospects left without an interaction")


class TaskReportRow(_Out):
    """One consultant's tasks created in the report's period."""

    staff: str = Field(description="the owner")
    created: int = Field(description="tasks created")
    done_on_time: int = Field(description="done by their due time")
    overdue: int = Field(description="done late, or still open past their due time")
    open: int = Field(description="still open")
    cancelled: int = Field(description="cancelled")


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


def _for_reader(actor: Actor | None, task: Task) -> Task:
    """What a reader is shown of a task: no free text for partners and analysts."""
    return task if actor is None else task_for(Scope.of_role(actor), task)


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


def _own_only(actor: Actor | None, owner: str, what: str) -> None:
    """A consultant (or service) acts only on their own tasks; managers and admins
    on anyone's."""
    if actor is not None and actor.role not in TASK_MANAGERS and owner != actor.staff_id:
        raise Forbidden(f"role {actor.role} may {what} only their own tasks "
                        f"(this one is {owner}'s)")


class TaskService:
    """``crm.tasks``: follow-up tasks."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # -- writing ------------------------------------------------------------------------
    def add(self, data: TaskIn | Mapping[str, Any], actor: Actor | None = None) -> Task:
        """Add a task; the owner is ``staff``, else the actor. Fires ``recrm_task_created``."""
        check_writer(actor)
        if not isinstance(data, TaskIn):
            try:
                data = TaskIn.model_validate(dict(data))
            except ValidationError as exc:
                raise InvalidInput(*first_error(exc)) from None
        owner = data.staff or (actor.staff_id if actor else None)
        if owner is None:
            raise InvalidInput("staff", "give the task's owner (a staff id)")
        _own_only(actor, owner, "add")
        with self.crm.unit_of_work(actor) as uow:
            self.crm.directory.check(uow, [owner])
            cid = resolve_id(uow.session, data.customer_id)
            pid = known_project_id(uow.session, project_code(data.project))
            task = self.create_in(uow, cid, pid, kind=data.kind, owner=owner,
                                  due_at=data.due_at, note=data.note,
                                  created_by=actor.staff_id if actor else None)
            assert task is not None  # no rule key: always created
            return task

    def create_in(self, uow: UnitOfWork, customer_id: int, project_id: int, *, kind: str,
                  owner: str, due_at: dt.datetime, note: str | None = None,
                  rule: str | None = None, rule_key: str | None = None,
                  created_by: str | None = None, now: dt.datetime | None = None
                  ) -> Task | None:
        """Add a task inside a running operation and fire ``recrm_task_created``; with
        ``rule_key``, None when a task of that key exists (the rule fired before)."""
        values = _new_task(customer_id, project_id, kind=kind, owner=owner, due_at=due_at,
                           note=note, rule=rule, rule_key=rule_key, created_by=created_by,
                           now=now)
        uow.session.flush()
        if rule_key is None:
            task_id = uow.session.connection().execute(_INSERT_TASK, values).scalar()
        else:
            task_id = insert_or_ignore(uow.session, TaskRow, values, on=[TaskRow.rule_key],
                                       returning=TaskRow.id)
        if task_id is None:
            return None
        return self._created(uow, [(task_id, values)], now)[0]

    def _created(self, uow: UnitOfWork, written: Sequence[tuple[int, dict[str, Any]]],
                 now: dt.datetime | None) -> builtins.list[Task]:
        """The tasks just written (id and values), with ``recrm_task_created`` fired for
        each in order."""
        codes = {pid: _project_code(uow.session, pid)
                 for pid in {values["project_id"] for _, values in written}}
        at = now or utcnow()
        tasks = [Task(id=task_id, customer_id=v["customer_id"], project=codes[v["project_id"]],
                      kind=v["kind"], owner_staff=v["owner_staff"], due_at=v["due_at"],
                      note=v["note"], status="open", rule=v["rule"],
                      created_by=v["created_by"], created_at=v["created_at"],
                      overdue=v["due_at"] < at)
                 for task_id, v in written]
        for task in tasks:
            self.crm.hooks.task_created(uow, task)
        return tasks

    def done(self, task_id: int, interaction_id: int | None = None,
             actor: Actor | None = None, now: dt.datetime | None = None) -> Task:
        """Mark an open task done (refused otherwise), with the customer's interaction
        that did it, if given. Fires ``recrm_task_done``."""
        check_writer(actor)
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            row = self._row_for_change(uow.session, task_id, actor, "complete")
            closed_at = at
            if interaction_id is not None:
                found = uow.session.execute(
                    select(InteractionRow.customer_id, InteractionRow.occurred_at)
                    .where(InteractionRow.id == interaction_id)).first()
                if found is None or resolve_id(uow.session, found[0]) != \
                        resolve_id(uow.session, row.customer_id):
                    raise NotFound(f"no interaction {interaction_id} of customer "
                                   f"{row.customer_id}")
                closed_at = found[1]
            return self.close_in(uow, row.id, interaction_id, closed_at, at)

    def close_in(self, uow: UnitOfWork, task_id: int, interaction_id: int | None,
                 closed_at: dt.datetime, now: dt.datetime | None = None) -> Task:
        """Mark the open task ``task_id`` done inside a running operation (guarded: a
        task someone else closed meanwhile is Refused) and fire ``recrm_task_done``."""
        return self.close_many_in(uow, [(task_id, interaction_id, closed_at)], now)[0]

    def close_many_in(self, uow: UnitOfWork,
                      closes: Sequence[tuple[int, int | None, dt.datetime]],
                      now: dt.datetime | None = None) -> builtins.list[Task]:
        """``close_in`` for each (task id, interaction id, closed at) of ``closes``, in
        order, with few statements whatever their number, then ``recrm_task_done`` for
        each. Refused, for them all, if one is not open."""
        if not closes:
            return []
        # Pending ORM changes first, as the ORM statement's autoflush would have
        # written them; then one prebuilt statement (every fulfilling interaction runs it).
        uow.session.flush()
        conn = uow.session.connection()
        at = now or utcnow()
        if len(closes) == 1:
            # A single interaction, the common case: the UPDATE returns the row.
            [(task_id, interaction_id, closed_at)] = closes
            row = conn.execute(_CLOSE_ONE_TASK, {
                "b_id": task_id, "b_open": "open", "b_done": "done", "b_iid": interaction_id,
                "b_at": closed_at}).mappings().first()
            if row is None:
                raise Refused(f"task {task_id} is not open")
            tasks = [_from_columns(dict(row), _project_code(uow.session, row["project_id"]), at)]
        else:
            tasks = _close_many(conn, closes, at)
        for task in tasks:
            self.crm.hooks.task_done(uow, task)
        return tasks

    def cancel(self, task_id: int, reason: str, actor: Actor | None = None,
               now: dt.datetime | None = None) -> Task:
        """Cancel an open task (refused otherwise), saying why."""
        check_writer(actor)
        try:
            why = required_text(reason, "reason", 500)
        except ValueError as exc:
            raise InvalidInput("reason", str(exc)) from None
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            row = self._row_for_change(uow.session, task_id, actor, "cancel")
            uow.session.execute(
                update(TaskRow).where(TaskRow.id == row.id, TaskRow.status == "open")
                .values(status="cancelled", cancel_reason=why, closed_at=at)
                .execution_options(synchronize_session=False))
            return self._get_in(uow.session, row.id, at)

    def _row_for_change(self, session: Session, task_id: int, actor: Actor | None,
                        what: str) -> TaskRow:
        row = session.get(TaskRow, task_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no such task {task_id}")
        _own_only(actor, row.owner_staff, what)
        if row.status != "open":
            raise Refused(f"task {task_id} is {row.status}, not open")
        return row

    # -- reading ------------------------------------------------------------------------
    def _get_in(self, session: Session, task_id: int, now: dt.datetime) -> Task:
        found = load_tasks(session, _select().where(TaskRow.id == task_id), now)
        if not found:
            raise NotFound(f"no such task {task_id}")
        return found[0]

    def get(self, task_id: int, actor: Actor | None = None,
            now: dt.datetime | None = None) -> Task:
        require_role(actor, TASK_READERS, "read tasks")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            task = self._get_in(uow.session, task_id, now or utcnow())
        if actor is not None and actor.role in OWN_TASKS_ONLY \
                and task.owner_staff != actor.staff_id:
            raise Forbidden(f"role {actor.role} may read only their own tasks (this one is "
                            f"{task.owner_staff}'s)")
        return _for_reader(actor, task)

    def list(self, *, staff: str | None = None, status: str | None = "open",
             overdue: bool = False, due_today: bool = False, customer_id: int | None = None,
             project: str | None = None, limit: int | None = None,
             actor: Actor | None = None, now: dt.datetime | None = None
             ) -> builtins.list[Task]:
        """Tasks, earliest due first: ``status`` (default open; None: any), of ``staff``,
        ``overdue`` (open past due), ``due_today`` (due on today's date in the business
        time zone). A consultant sees only their own."""
        require_role(actor, TASK_READERS, "read tasks")
        at = now or utcnow()
        if actor is not None and actor.role in OWN_TASKS_ONLY:
            if staff is not None and staff != actor.staff_id:
                raise Forbidden(f"role {actor.role} may list only their own tasks")
            staff = actor.staff_id
        if status is not None and status not in STATUSES:
            raise InvalidInput("status", f"one of {', '.join(STATUSES)}")
        query = _select()
        if staff is not None:
            try:
                staff = optional_code(staff, 64)
            except ValueError as exc:
                raise InvalidInput("staff", f"staff {exc}") from None
            query = query.where(TaskRow.owner_staff == staff)
        if overdue:
            query = query.where(TaskRow.status == "open", TaskRow.due_at < at)
        elif status is not None:
            query = query.where(TaskRow.status == status)
        if due_today:
            start, end = _day_bounds(at, self.crm.config.zone)
            query = query.where(TaskRow.due_at >= start, TaskRow.due_at < end)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            if customer_id is not None:
                query = query.where(TaskRow.customer_id == resolve_id(session, customer_id))
            if project is not None:
                query = query.where(TaskRow.project_id == known_project_id(
                    session, project_code(project)))
            query = query.order_by(TaskRow.due_at, TaskRow.id)
            if limit is not None:
                query = query.limit(limit)
            return [_for_reader(actor, t) for t in load_tasks(session, query, at)]

    def open_for_customer_in(self, session: Session, customer_id: int,
                             now: dt.datetime | None = None) -> builtins.list[Task]:
        """The customer's open tasks, earliest due first (the 360 view lists them)."""
        return load_tasks(session, _select().where(
            TaskRow.customer_id == customer_id, TaskRow.status == "open")
            .order_by(TaskRow.due_at, TaskRow.id), now or utcnow())

    # -- the rules ----------------------------------------------------------------------
    def sweep(self, now: dt.datetime | None = None, actor: Actor | None = None) -> TaskSweep:
        """Create the rule-based tasks that are due (idempotent; for cron)."""
        require_role(actor, TASK_MANAGERS, "sweep tasks")
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            visits = self._sweep_after_visit(uow, at)
            idle = self._sweep_prospects(uow, at)
        return TaskSweep(after_visit=visits, prospect_idle=idle)

    def after_visit_in(self, uow: UnitOfWork, customer_id: int, project_id: int,
                       visit_at: dt.datetime, visit_staff: str | None,
                       now: dt.datetime | None = None) -> Task | None:
        """The visit rule for a customer's first visit to a project: a call for the
        project's owning consultant (else whoever received the visit), due
        ``after_visit_hours`` after it; None when nobody owns it or it fired before."""
        return self.after_visit_many_in(
            uow, [FirstVisit(customer_id, project_id, visit_at, visit_staff)], now)[0]

    def after_visit_many_in(self, uow: UnitOfWork, visits: Sequence[FirstVisit],
                            now: dt.datetime | None = None) -> builtins.list[Task | None]:
        """``after_visit_in`` for each of ``visits``, in order: one read of the links'
        owners, one of who left, one INSERT run once for all the new tasks."""
        if not visits:
            return []
        owners = _link_owners(uow.session, {(v.customer_id, v.project_id) for v in visits})
        candidates = [[s for s in (owners.get((v.customer_id, v.project_id)), v.staff)
                       if s is not None] for v in visits]
        # Nobody who left is given new work: whoever received the visit, then nobody.
        gone = refused_staff(uow.session, False, [s for c in candidates for s in c])
        hours = self.crm.config.followup.after_visit_hours
        planned: dict[int, dict[str, Any]] = {}
        for n, (visit, theirs) in enumerate(zip(visits, candidates, strict=True)):
            owner = next((s for s in theirs if s not in gone), None)
            if owner is None:
                continue
            key = f"{AFTER_VISIT}:{visit.customer_id}:{visit.project_id}"
            planned[n] = _new_task(visit.customer_id, visit.project_id, kind="call",
                                   owner=owner, due_at=visit.at + dt.timedelta(hours=hours),
                                   rule=AFTER_VISIT, rule_key=key, now=now)
        uow.session.flush()
        # A second first visit of a customer to a project in the batch repeats a key:
        # its first row gets the task, the later ones None, as one call per visit would.
        ids = insert_or_ignore_many(uow.session, TaskRow, list(planned.values()),
                                    on=[TaskRow.rule_key], returning=TaskRow.id)
        written = {n: (task_id, values) for (n, values), task_id
                   in zip(planned.items(), ids, strict=True) if task_id is not None}
        tasks = dict(zip(written, self._created(uow, list(written.values()), now), strict=True))
        return [tasks.get(n) for n in range(len(visits))]

    def _sweep_after_visit(self, uow: UnitOfWork, now: dt.datetime) -> int:
        """First visits nobody followed up (no interaction at the project after it)
        that have no visit-rule task yet."""
        visit = aliased(InteractionRow)
        later = aliased(InteractionRow)
        first = (
            select(visit.customer_id, visit.project_id,
                   func.min(visit.occurred_at).label("at"))
            .where(visit.kind == "visit", visit.project_id.is_not(None))
            .group_by(visit.customer_id, visit.project_id).subquery()
        )
        rows = uow.session.execute(
            select(first.c.customer_id, first.c.project_id, first.c.at)
            .where(~exists().where(later.customer_id == first.c.customer_id,
                                   later.project_id == first.c.project_id,
                                   later.occurred_at > first.c.at))
            .where(~exists().where(TaskRow.customer_id == first.c.customer_id,
                                   TaskRow.project_id == first.c.project_id,
                                   TaskRow.rule == AFTER_VISIT))
            .order_by(first.c.customer_id, first.c.project_id)).all()
        created = 0
        for cid, pid, at in rows:
            staff = uow.session.scalar(
                select(InteractionRow.staff).where(
                    InteractionRow.customer_id == cid, InteractionRow.project_id == pid,
                    InteractionRow.kind == "visit").order_by(InteractionRow.occurred_at).limit(1))
            created += self.after_visit_in(uow, cid, pid, at, staff, now) is not None
        return created

    def _sweep_prospects(self, uow: UnitOfWork, now: dt.datetime) -> int:
        """Owned prospects with no interaction at the project for ``prospect_days``
        and no open task there: a call for the owner, once per quiet spell."""
        days = self.crm.config.followup.prospect_days
        cutoff = now - dt.timedelta(days=days)
        last = (
            select(func.max(InteractionRow.occurred_at))
            .where(InteractionRow.customer_id == CustomerProjectRow.customer_id,
                   InteractionRow.project_id == CustomerProjectRow.project_id)
            .scalar_subquery()
        )
        open_task = exists().where(TaskRow.customer_id == CustomerProjectRow.customer_id,
                                   TaskRow.project_id == CustomerProjectRow.project_id,
                                   TaskRow.status == "open")
        rows = uow.session.execute(
            select(CustomerProjectRow.customer_id, CustomerProjectRow.project_id,
                   CustomerProjectRow.owner_staff, CustomerProjectRow.first_seen_at,
                   last.label("last"))
            .where(CustomerProjectRow.stage == "prospect",
                   CustomerProjectRow.owner_staff.is_not(None),
                   CustomerProjectRow.first_seen_at <= cutoff, ~open_task,
                   ~exists().where(StaffRow.id == CustomerProjectRow.owner_staff,
                                   StaffRow.left_at.is_not(None)))
            .order_by(CustomerProjectRow.customer_id, CustomerProjectRow.project_id)).all()
        created = 0
        for cid, pid, owner, first_seen, last_at in rows:
            quiet_since = last_at or first_seen
            if quiet_since > cutoff or owner is None:
                continue
            stamp = int(quiet_since.timestamp())
            task = self.create_in(uow, cid, pid, kind="call", owner=owner,
                                  due_at=max(quiet_since + dt.timedelta(days=days), now),
                                  rule=PROSPECT_IDLE,
                                  rule_key=f"{PROSPECT_IDLE}:{cid}:{pid}:{stamp}", now=now)
            created += task is not None
        return created

    # -- reports ------------------------------------------------------------------------
    def report(self, start: dt.date | None = None, end: dt.date | None = None,
               actor: Actor | None = None, now: dt.datetime | None = None
               ) -> builtins.list[TaskReportRow]:
        """Per consultant, the tasks created from ``start`` to ``end`` (dates in the
        business time zone, both included): created, done on time, overdue (done late
        or open past due), open, cancelled."""
        require_role(actor, (*TASK_MANAGERS, "analyst"), "read the task report")
        at = now or utcnow()
        conditions = period_conditions(TaskRow.created_at, start, end, self.crm.config.zone)
        done = TaskRow.status == "done"
        on_time = and_(done, TaskRow.closed_at <= TaskRow.due_at)
        late = and_(done, TaskRow.closed_at > TaskRow.due_at)
        overdue_open = and_(TaskRow.status == "open", TaskRow.due_at < at)

        def flag(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        with self.crm.unit_of_work(actor, readonly=True) as uow:
            rows = uow.session.execute(
                select(TaskRow.owner_staff, func.count(),
                       flag(on_time), flag(late | overdue_open),
                       flag(TaskRow.status == "open"), flag(TaskRow.status == "cancelled"))
                .where(*conditions).group_by(TaskRow.owner_staff)
                .order_by(TaskRow.owner_staff)).all()
        return [TaskReportRow(staff=s, created=c, done_on_time=d, overdue=o, open=op,
                              cancelled=x) for s, c, d, o, op, x in rows]

    # -- privacy ------------------------------------------------------------------------
    def export_in(self, session: Session, ids: builtins.list[int]) -> builtins.list[Any]:
        """The tasks about the person (and customers merged into them), for the export."""
        found: builtins.list[Any] = []
        for part in chunks(ids):
            found.extend(t.model_dump(mode="json") for t in load_tasks(
                session, _select().where(TaskRow.customer_id.in_(part))
                .order_by(TaskRow.id), utcnow()))
        return found


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
