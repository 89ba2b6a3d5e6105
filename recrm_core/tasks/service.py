"""``crm.tasks``: adding, closing, listing and sweeping follow-up tasks, and the
task report."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import and_, case, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from ..access import Scope, check_writer, require_role, task_for
from ..customers import current_for_write, resolve_for_write, resolve_id
from ..db import UnitOfWork, chunks, utcnow
from ..directory import refused_staff
from ..errors import Forbidden, InvalidInput, NotFound, Refused
from ..models import Actor, Task, first_error
from ..projects import known_project_id, project_code
from ..tables import CustomerProjectRow, InteractionRow, StaffRow, TaskRow
from ..upserting import insert_or_ignore, insert_or_ignore_many
from ..values import optional_code, required_text
from .rows import (
    _CLOSE_ONE_TASK,
    _INSERT_TASK,
    _close_many,
    _from_columns,
    _link_owners,
    _new_task,
    _project_code,
    _select,
    load_tasks,
)
from .schemas import (
    AFTER_VISIT,
    OWN_TASKS_ONLY,
    PROSPECT_IDLE,
    STATUSES,
    TASK_MANAGERS,
    TASK_READERS,
    FirstVisit,
    TaskIn,
    TaskReportRow,
    TaskSweep,
)
from .times import _day_bounds, period_conditions

if TYPE_CHECKING:
    from ..crm import CRM


def _for_reader(actor: Actor | None, task: Task) -> Task:
    """What a reader is shown of a task: no free text for partners and analysts."""
    return task if actor is None else task_for(Scope.of_role(actor), task)


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
            cid = resolve_for_write(uow.session, data.customer_id)
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
        gone = refused_staff(uow.session, False, [s for c in candidates for s in c],
                             assigned=True)
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
        current = current_for_write(uow.session, [cid for cid, _, _ in rows])
        created = 0
        for cid, pid, at in rows:
            if cid not in current:
                continue
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
        # The last contact that happened by ``now``: one dated ahead is no follow-up yet.
        last = (
            select(func.max(InteractionRow.occurred_at))
            .where(InteractionRow.customer_id == CustomerProjectRow.customer_id,
                   InteractionRow.project_id == CustomerProjectRow.project_id,
                   InteractionRow.occurred_at <= now)
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
        current = current_for_write(uow.session, [cid for cid, *_ in rows])
        created = 0
        for cid, pid, owner, first_seen, last_at in rows:
            quiet_since = last_at or first_seen
            if quiet_since > cutoff or owner is None or cid not in current:
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

