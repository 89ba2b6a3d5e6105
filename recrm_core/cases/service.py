"""``crm.cases``: opening, transitions, transfers, escalation, routing and the reads."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.orm import Session

from ..access import case_for, check_writer, scope_of
from ..customers import resolve_for_write, resolve_id
from ..db import MAX_ID, UnitOfWork, utcnow, valid_id
from ..errors import InvalidInput, NotFound, Refused
from ..identity import clean, clean_code
from ..models import Actor, Case, CaseHistoryEntry, CaseIn, trusted
from ..projects import known_project_id, project_code, project_id_in
from ..tables import CaseHistoryRow, CaseRow, ProjectRow
from .rows import (
    _INSERT_CASE,
    _INSERT_HISTORY,
    _SET_PLACE,
    _SET_STATUS,
    TRANSITION_FIELDS,
    _entry,
    _full_model,
    _history_of,
    _lock,
    _locked_values,
    _model_of,
    _project_code,
    _refuse,
    _refused,
    _stored_model,
    _to_model,
)
from .rules import (
    ACTIVE,
    INTAKE_CHANNELS,
    STATUSES,
    TRANSITIONS,
    _aware,
    _code,
    _place,
    overdue_clause,
    validate_case,
)

if TYPE_CHECKING:
    from ..crm import CRM

#: the core's implementations of ``recrm_case_opened`` that never change the case (the
#: webhooks outbox): when no other runs, ``open`` returns the case it wrote and its
#: hooks saw, without reading it back (a statement and ~10 % of an opening). Any
#: other implementation may change the case, through the ORM or Core, and the case
#: is then read back after the hooks.
_LEAVE_THE_CASE = frozenset({"recrm_core.webhooks.hooks"})
#: ``transition_many``'s lock of its cases, in id order
_LOCK_MANY = (select(CaseRow.id).where(CaseRow.id.in_(bindparam("ids", expanding=True)))
              .order_by(CaseRow.id).with_for_update())


class CaseService:
    """``crm.cases``: service cases, their SLAs and their history."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # -- writing --------------------------------------------------------------------------
    def open(
        self,
        data: CaseIn | Mapping[str, Any],
        actor: Actor | None = None,
        *,
        opened_at: dt.datetime | None = None,
    ) -> Case:
        """Open a case for a customer (a merged id opens it on the survivor).

        ``opened_at`` back-dates the opening (imports from another system, the demo,
        tests); the SLA is counted from it. The project is created if new (while
        ``auto_create_projects`` is on; else an unknown one is UnknownProject).
        Raises NotFound for an unknown customer, InvalidInput for bad data.
        """
        check_writer(actor)
        record = validate_case(data)
        with self.crm.unit_of_work(actor) as uow:
            return self.open_in(uow, record, opened_at=opened_at)

    def open_in(
        self,
        uow: UnitOfWork,
        data: CaseIn | Mapping[str, Any],
        *,
        opened_at: dt.datetime | None = None,
    ) -> Case:
        """Open a case inside an existing unit of work (for plugins, e.g. a survey
        that opens a case for a detractor's answer); fires ``recrm_case_opened``."""
        record = validate_case(data)
        uow.check_staff([record.assignee], assigned=True)
        now = utcnow()
        opened = now if opened_at is None else _aware(opened_at, "opened_at")
        if opened > now:
            raise InvalidInput("opened_at", "opened_at is in the future")
        customer_id = resolve_for_write(uow.driver, record.customer_id)
        project_id = (
            project_id_in(uow, project_code(record.project)) if record.project else None
        )
        # A Core insert and the hook's model built from the values written: the ORM
        # object's flush and reading the case back cost most of an opening.
        values: dict[str, Any] = {
            "customer_id": customer_id,
            "project_id": project_id,
            "category": record.category,
            "priority": record.priority,
            "status": "open",
            "subject": record.subject,
            "description": record.description or None,
            "department": record.department,
            "assignee": record.assignee,
            "escalation_level": 0,
            # UTC, as the columns give them back: the model below is what a read gives
            "sla_due_at": self._due(opened, record.category, record.priority).astimezone(
                dt.UTC),
            "opened_at": opened.astimezone(dt.UTC),
            "updated_at": now,
            "channel": record.channel,
            "level_since": opened.astimezone(dt.UTC),
        }
        # (uow.driver: pending ORM changes first, as the ORM insert's flush wrote them)
        conn = uow.driver
        case_id = _INSERT_CASE.run(conn, values)
        values.update(id=case_id, incident_id=None, resolved_at=None, closed_at=None)
        history = [self.write_history(uow, case_id, "open", None, "open", None, opened)]
        if values["assignee"] is None:
            from ..caserouting import route_in

            routed = route_in(self.crm, uow, case_id, values["category"],
                              (values["department"], None),
                              record.project and project_code(record.project),
                              keep_department=record.department is not None, at=opened)
            if routed is not None:
                history.append(routed[0])
                values["department"], values["assignee"] = routed[1:]
                _SET_PLACE.run(conn, {"b_id": case_id, "b_department": routed[1],
                                          "b_assignee": routed[2]})
        code = project_code(record.project) if record.project else None
        levels = self.level_names()
        case = _model_of(values, code, now, history, levels)
        self.crm.hooks.case_opened(uow, case)
        if self.crm.hooks.implemented_only_by("recrm_case_opened", _LEAVE_THE_CASE):
            # No hook that may have changed the case ran: it is as written.
            return case
        return _stored_model(uow.driver, case_id, now, levels)

    def start(self, case_id: int, actor: Actor | None = None, note: str | None = None) -> Case:
        """open | reopened → in_progress."""
        return self._transition(case_id, "start", note, actor)

    def resolve(self, case_id: int, note: str | None = None, actor: Actor | None = None) -> Case:
        """open | in_progress | reopened → resolved (sets ``resolved_at``)."""
        return self._transition(case_id, "resolve", note, actor)

    def close(self, case_id: int, note: str | None = None, actor: Actor | None = None) -> Case:
        """resolved → closed (sets ``closed_at``)."""
        return self._transition(case_id, "close", note, actor)

    def reopen(self, case_id: int, note: str | None = None, actor: Actor | None = None) -> Case:
        """resolved | closed → reopened; clears the resolution and restarts the SLA."""
        return self._transition(case_id, "reopen", note, actor)

    def transfer(
        self,
        case_id: int,
        department: str | None = None,
        assignee: str | None = None,
        note: str | None = None,
        actor: Actor | None = None,
    ) -> Case:
        """Hand the case to another department and/or assignee, recorded as
        ``transfer`` from ``"dept/assignee"`` to ``"dept/assignee"``.

        Refused for a resolved or closed case and for a transfer to where the case
        already is. Moving to another department without naming an assignee leaves
        the case unassigned.
        """
        check_writer(actor)
        with self.crm.unit_of_work(actor) as uow:
            return self.transfer_in(uow, case_id, department, assignee, note)

    def transfer_in(
        self,
        uow: UnitOfWork,
        case_id: int,
        department: str | None = None,
        assignee: str | None = None,
        note: str | None = None,
    ) -> Case:
        """:meth:`transfer` inside an existing unit of work (e.g. a routing plugin
        assigning a department from ``recrm_case_opened``)."""
        department = _code(department, "department", 64)
        assignee = _code(assignee, "assignee", 64)
        if department is None and assignee is None:
            raise InvalidInput("department,assignee", "give a department or an assignee")
        self.crm.directory.check(uow, [assignee])
        session = uow.session
        row = _lock(session, case_id)
        if row.status not in ACTIVE:
            raise _refuse(row, "transfer")
        new_department = department if department is not None else row.department
        if assignee is not None:
            new_assignee: str | None = assignee
        elif new_department != row.department:
            new_assignee = None
        else:
            new_assignee = row.assignee
        old_place = _place(row.department, row.assignee)
        if (new_department, new_assignee) == (row.department, row.assignee):
            raise Refused(f"case {row.id} is already with {old_place}")
        now = utcnow()
        row.department, row.assignee, row.updated_at = new_department, new_assignee, now
        self.record(uow, row, "transfer", old_place, _place(new_department, new_assignee),
                     note, now)
        return self._reloaded(session, row, now)

    def escalate(self, case_id: int, note: str | None = None, actor: Actor | None = None) -> Case:
        """Move the case one level up ``[[sla.levels]]``: the priority one step up (see
        the module docstring for how the SLA follows), the case handed to the level's
        department, its owners notified (after the commit). Refused for a resolved or
        closed case and at the top level."""
        from ..escalation import escalate_in, send_notices

        check_writer(actor)
        with self.crm.unit_of_work(actor) as uow:
            row = _lock(uow.session, case_id)
            now = utcnow()
            notices = escalate_in(self.crm, uow, row, note, now)
            case = self._reloaded(uow.session, row, now)
        send_notices(self.crm, notices)
        return case

    def route(self, case_id: int, actor: Actor | None = None) -> Case:
        """Route the case again by the ``[[routing]]`` rules (its department and, in
        turn, an assignee); refused when no rule matches or the case is not active."""
        from ..caserouting import route_in

        check_writer(actor)
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = _lock(session, case_id)
            if row.status not in ACTIVE:
                raise _refuse(row, "route")
            code = session.scalar(select(ProjectRow.code).where(
                ProjectRow.id == row.project_id)) if row.project_id else None
            now = utcnow()
            routed = route_in(self.crm, uow, row.id, row.category, (row.department, row.assignee),
                              code,
                              keep_department=False, at=now)
            if routed is None:
                raise Refused(f"case {row.id}: no routing rule matches category "
                              f"{row.category!r}" + (f" at {code}" if code else ""))
            row.department, row.assignee = routed[1:]
            return self._reloaded(session, row, now)

    def sweep(self, *, now: dt.datetime | None = None,
              actor: Actor | None = None) -> dict[str, int]:
        """Escalate every overdue case that has been at its level longer than the level's
        window without a status change; at the top level, notify its owners again after
        each window (for cron; a second run at the same time changes nothing). Returns
        ``{"checked", "escalated", "notified"}``."""
        from ..escalation import sweep

        check_writer(actor)
        # ``now`` is for a fixed clock (tests, a replay); cron runs it with the real time.
        return sweep(self.crm, _aware(now, "now"), actor)

    def level_names(self) -> builtins.list[str]:
        return [level.name for level in self.crm.config.sla.levels]

    def _due(self, start: dt.datetime, category: str, priority: str) -> dt.datetime:
        return self.crm.config.sla.due(start, category, priority, self.crm.config.zone)

    # -- reading --------------------------------------------------------------------------
    def get(
        self, case_id: int, *, now: dt.datetime | None = None, actor: Actor | None = None
    ) -> Case:
        """One case with its history (oldest first); ``overdue`` as of ``now``."""
        at = _aware(now, "now")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            row = uow.session.get(CaseRow, case_id) if valid_id(case_id) else None
            if row is None:
                raise NotFound(f"no case {case_id}")
            return case_for(scope_of(uow.session, actor),
                            _full_model(uow.session, row, at, self.level_names()))

    def list_for_customer(self, session: Session, customer_id: int) -> builtins.list[Case]:
        """A customer's cases, newest first, each with its escalations (for the 360 view,
        which shows the level and how the case got there)."""
        cases = self._listed(session, CaseRow.customer_id == customer_id)
        escalations: dict[int, builtins.list[CaseHistoryEntry]] = {}
        for r in session.scalars(select(CaseHistoryRow).where(
                CaseHistoryRow.case_id.in_([c.id for c in cases]),
                CaseHistoryRow.action == "escalate").order_by(CaseHistoryRow.id)):
            escalations.setdefault(r.case_id, []).append(_entry(r))
        return [c.model_copy(update={"history": escalations.get(c.id, [])}) for c in cases]

    def list_linked(self, session: Session, incident_id: int) -> builtins.list[Case]:
        """An incident's cases, newest first, without history."""
        return self._listed(session, CaseRow.incident_id == incident_id)

    def _listed(self, session: Session, where: ColumnElement[bool]) -> builtins.list[Case]:
        now = utcnow()
        query = (
            select(CaseRow, ProjectRow.code)
            .outerjoin(ProjectRow, ProjectRow.id == CaseRow.project_id)
            .where(where)
            .order_by(CaseRow.opened_at.desc(), CaseRow.id.desc())
        )
        levels = self.level_names()
        return [_to_model(row, code, now, None, levels) for row, code in session.execute(query)]

    def summary(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """Counts for dashboards and the demo::

            {"total": N, "by_status": {"open": N, "in_progress": N, "resolved": N,
             "closed": N, "reopened": N}, "unresolved": N, "overdue": N,
             "by_channel": {"hotline": N, ...}, "by_level": {"head office": N, ...}}

        ``unresolved`` counts the active statuses (open, in_progress, reopened);
        ``overdue`` those of them past their SLA due time at ``now``.
        """
        at = _aware(now, "now")
        with self.crm.unit_of_work(readonly=True) as uow:
            session = uow.session
            counts: dict[str, int] = {
                status: int(n)
                for status, n in session.execute(
                    select(CaseRow.status, func.count()).group_by(CaseRow.status)
                )
            }
            overdue = session.scalar(
                select(func.count()).select_from(CaseRow).where(overdue_clause(at))
            )
            channels = {c: int(n) for c, n in session.execute(
                select(CaseRow.channel, func.count()).group_by(CaseRow.channel)
                .order_by(CaseRow.channel))}
            levels = {level: int(n) for level, n in session.execute(
                select(CaseRow.escalation_level, func.count())
                .group_by(CaseRow.escalation_level))}
        by_status = {s: counts.get(s, 0) for s in STATUSES}
        names = self.level_names()
        by_level: dict[str, int] = {}
        for level, n in sorted(levels.items()):
            name = names[min(level, len(names) - 1)]
            by_level[name] = by_level.get(name, 0) + int(n)
        return {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "unresolved": sum(by_status[s] for s in ACTIVE),
            "overdue": int(overdue or 0),
            "by_channel": channels,
            "by_level": by_level,
        }

    def list(
        self,
        *,
        status: str | None = None,
        overdue: bool = False,
        customer_id: int | None = None,
        project: str | None = None,
        assignee: str | None = None,
        department: str | None = None,
        channel: str | None = None,
        limit: int | None = None,
        now: dt.datetime | None = None,
        actor: Actor | None = None,
    ) -> builtins.list[Case]:
        """Cases matching every given filter, most urgent (earliest due) first,
        without history (``get`` has it). ``overdue`` keeps active cases whose SLA
        due time is before ``now``. All filtering happens in SQL. An unknown customer
        or project is NotFound."""
        at = _aware(now, "now")
        query = select(CaseRow, ProjectRow.code).outerjoin(
            ProjectRow, ProjectRow.id == CaseRow.project_id
        )
        if status is not None:
            wanted = clean(status).lower()
            if wanted not in STATUSES:
                raise InvalidInput("status", f"status {wanted!r} is not one of "
                                   f"{', '.join(STATUSES)}")
            query = query.where(CaseRow.status == wanted)
        if overdue:
            query = query.where(overdue_clause(at))
        if assignee is not None:
            query = query.where(CaseRow.assignee == clean_code(assignee))
        if department is not None:
            query = query.where(CaseRow.department == clean_code(department))
        if channel is not None:
            wanted_channel = clean(channel).lower()
            if wanted_channel not in INTAKE_CHANNELS:
                raise InvalidInput("channel", f"channel {wanted_channel!r} is not one of "
                                   f"{', '.join(INTAKE_CHANNELS)}")
            query = query.where(CaseRow.channel == wanted_channel)
        if limit is not None and limit < 1:
            raise InvalidInput("limit", "limit must be at least 1")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            if customer_id is not None:
                query = query.where(CaseRow.customer_id == resolve_id(session, customer_id))
            if project is not None:
                pid = known_project_id(session, project_code(project))
                query = query.where(CaseRow.project_id == pid)
            query = query.order_by(CaseRow.sla_due_at, CaseRow.id)
            if limit is not None:
                # Beyond MAX_ID there cannot be more cases; a larger LIMIT would overflow.
                query = query.limit(min(limit, MAX_ID))
            scope = scope_of(session, actor)
            levels = self.level_names()
            return [case_for(scope, _to_model(row, code, at, None, levels))
                    for row, code in session.execute(query)]

    # -- internals ------------------------------------------------------------------------
    def transition_many(
        self, steps: Iterable[tuple[int, str, str | None]], actor: Actor | None = None
    ) -> builtins.list[Case]:
        """Many status changes (``(case_id, action, note)``, ``action`` one of
        ``start``, ``resolve``, ``close``, ``reopen``) in one unit of work, in order (a
        case changed twice is changed twice): the same rows, results and
        ``recrm_case_status_changed`` calls as one call per step, for a bulk job (the
        demo's call-backs, an integrator's back-office load). A step the status refuses
        rolls back all of them. The cases are locked first, in id order, so two
        batches naming the same cases in other orders wait for each other rather than
        deadlock."""
        check_writer(actor)
        steps = builtins.list(steps)
        for _, action, _ in steps:
            if action not in TRANSITIONS:
                raise InvalidInput("action", f"not one of {', '.join(sorted(TRANSITIONS))}")
        with self.crm.unit_of_work(actor) as uow:
            ids = sorted({case_id for case_id, _, _ in steps if valid_id(case_id)})
            if len(ids) > 1:
                uow.connection.execute(_LOCK_MANY, {"ids": ids}).all()
            return [self._transition_in(uow, case_id, action, note)
                    for case_id, action, note in steps]

    def _transition(
        self, case_id: int, action: str, note: str | None, actor: Actor | None
    ) -> Case:
        """One status change in a unit of work of its own: a batch of one."""
        return self.transition_many([(case_id, action, note)], actor)[0]

    def _transition_in(self, uow: UnitOfWork, case_id: int, action: str,
                       note: str | None) -> Case:
        """One status change on the driver's cursor: the ORM's lock, flush and reads
        cost about two thirds of a status change (1.1 against 0.4 ms, bench/README.md)."""
        conn = uow.driver
        values = _locked_values(conn, case_id)
        old = values["status"]
        now = utcnow()
        values.update(self.transition_changes(case_id, old, values["category"],
                                              values["priority"], action, now))
        _SET_STATUS.run(conn, {"b_id": case_id,
                               **{f"b_{name}": values[name] for name in TRANSITION_FIELDS}})
        target = values["status"]
        self.write_history(uow, case_id, action, old, target, note, now)
        levels = self.level_names()
        case = _model_of(values, _project_code(conn, values["project_id"]), now,
                         _history_of(conn, case_id), levels)
        self.crm.hooks.case_status_changed(uow, case, old, target)
        if self.crm.hooks.implemented_only_by("recrm_case_status_changed",
                                              _LEAVE_THE_CASE):
            # No hook that may have changed the case ran: it is as written.
            return case
        return _stored_model(uow.driver, case_id, now, levels)

    def transition_changes(self, case_id: int, status: str, category: str, priority: str,
                           action: str, now: dt.datetime) -> dict[str, Any]:
        """The columns a status change (``action``) of a case in ``status`` sets at
        ``now`` (``TRANSITION_FIELDS``, UTC); Refused when the status does not allow it."""
        sources, target = TRANSITIONS[action]
        if status not in sources:
            raise _refused(case_id, status, action)
        # A status change restarts the level's window (escalation.py).
        changes: dict[str, Any] = {"status": target, "updated_at": now, "level_since": now}
        if action == "resolve":
            changes["resolved_at"] = now
        elif action == "close":
            changes["closed_at"] = now
        elif action == "reopen":
            changes.update(resolved_at=None, closed_at=None,
                           sla_due_at=self._due(now, category, priority).astimezone(dt.UTC))
        return changes

    def transition_in(self, uow: UnitOfWork, row: CaseRow, action: str,
                      note: str | None) -> Case:
        """One status change of a locked case inside ``uow`` (start, resolve, close,
        reopen); fires ``recrm_case_status_changed``."""
        session = uow.session
        old = row.status
        now = utcnow()
        changes = self.transition_changes(row.id, old, row.category, row.priority, action,
                                          now)
        for name, value in changes.items():
            setattr(row, name, value)
        target = row.status
        self.record(uow, row, action, old, target, note, now)
        self.crm.hooks.case_status_changed(
            uow, _full_model(session, row, now, self.level_names()), old, target)
        return self._reloaded(session, row, now)

    @staticmethod
    def record(
        uow: UnitOfWork,
        row: CaseRow,
        action: str,
        from_value: str | None,
        to_value: str | None,
        note: str | None,
        at: dt.datetime,
    ) -> None:
        CaseService.write_history(uow, row.id, action, from_value, to_value, note, at)

    @staticmethod
    def write_history(
        uow: UnitOfWork,
        case_id: int,
        action: str,
        from_value: str | None,
        to_value: str | None,
        note: str | None,
        at: dt.datetime,
    ) -> CaseHistoryEntry:
        """One history row of ``case_id``; the entry as a read would give it."""
        # Pending ORM changes (the case row) first (``uow.driver`` flushes them),
        # then a Core insert: an ORM object and its flush cost several times more, and
        # nothing reads the object.
        entry = {"action": action, "from_value": from_value, "to_value": to_value,
                 "note": clean(note) or None,
                 "actor_staff": uow.actor.staff_id if uow.actor else None,
                 "actor_role": uow.actor.role if uow.actor else None, "at": at}
        _INSERT_HISTORY.run(uow.driver, {"case_id": case_id, **entry})
        # Stored as UTC, read back as UTC.
        entry["at"] = at.astimezone(dt.UTC)
        return trusted(CaseHistoryEntry, entry)

    @staticmethod
    def clock_start(session: Session, row: CaseRow) -> dt.datetime:
        """When the SLA started counting: the last reopening, else the opening."""
        reopened = session.scalar(
            select(CaseHistoryRow.at)
            .where(CaseHistoryRow.case_id == row.id, CaseHistoryRow.action == "reopen")
            .order_by(CaseHistoryRow.id.desc())
            .limit(1)
        )
        return reopened if reopened is not None else row.opened_at

    def _reloaded(self, session: Session, row: CaseRow, now: dt.datetime) -> Case:
        # A hook may have changed the case through the unit of work (ORM or Core);
        # read it back so the caller sees what will be committed.
        return _stored_model(session, row.id, now, self.level_names())
