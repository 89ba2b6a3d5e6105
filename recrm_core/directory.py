"""The staff and department directory: who works where, in which role.

Staff ids are what customer owners (``owner_staff``), case assignees and actors refer
to. A member of staff who leaves stays in the directory (history names them) but takes
no new assignment. With ``require_known_staff`` an id the directory lacks is refused
wherever it is given; without it such ids keep working and :meth:`unknown_ids` lists
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from sqlalchemy import Connection, Select, bindparam, func, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import utcnow
from .errors import InvalidInput, NotFound, RecrmError, Refused
from .models import Actor, Department, DepartmentIn, Staff, StaffIn, first_error
from .projects import project_code, project_id_in
from .rawsql import RawSelect
from .tables import (
    AuditRow,
    CaseHistoryRow,
    CaseRow,
    CustomerProjectRow,
    DepartmentProjectRow,
    DepartmentRow,
    InteractionRow,
    ProjectRow,
    StaffRow,
)
from .values import required_code

if TYPE_CHECKING:
    from .crm import CRM
    from .db import UnitOfWork


class NoSuchStaff(NotFound):
    """A staff id the directory lacks, where ``require_known_staff`` asks for one."""

    def __init__(self, staff_id: str) -> None:
        super().__init__(f"no such staff {staff_id!r}")
        self.staff_id = staff_id


# FOR SHARE (PostgreSQL): a `leave` (FOR UPDATE) racing with an assignment waits for it
# to commit, or the assignment waits for the leave and sees it; never an assignment to
# someone who left in between.
_STAFF_LEFT = select(StaffRow.id, StaffRow.left_at, StaffRow.role).with_for_update(read=True)
#: roles that see no customer in full and change nothing (docs/access.md): never the
#: owner of a customer, the assignee of a case or the owner of a task
NEVER_ASSIGNED = frozenset({"partner", "analyst"})
_RAW_ONE_STAFF = RawSelect(cast("Select[Any]", _STAFF_LEFT.where(StaffRow.id == bindparam("id"))))


def refused_staff(session: Session | Connection, require_known: bool,
                  staff_ids: Iterable[str | None], *, assigned: bool = False
                  ) -> dict[str, RecrmError]:
    """Of ``staff_ids``, those that may take no new assignment, with the error saying
    why: one who left (always), one the directory lacks (when ``require_known``), and
    with ``assigned`` (an owner, an assignee: not an actor or who made a contact) one
    whose directory role is partner or analyst. The one rule every path naming a staff
    member as owner, assignee or actor asks."""
    wanted = sorted({s for s in staff_ids if s})
    if not wanted:
        return {}
    if len(wanted) == 1:
        # The common case (an actor, an owner): a prebuilt statement on the driver's
        # cursor, since every operation with an actor pays for it.
        conn = session.connection() if isinstance(session, Session) else session
        rows: Sequence[Any] = _RAW_ONE_STAFF.all(conn, {"id": wanted[0]})
    else:
        rows = session.execute(_STAFF_LEFT.where(StaffRow.id.in_(wanted))).all()
    found = {staff_id: (left_at, role) for staff_id, left_at, role in rows}
    refused: dict[str, RecrmError] = {}
    for staff_id in wanted:
        if staff_id not in found:
            if require_known:
                refused[staff_id] = NoSuchStaff(staff_id)
        elif found[staff_id][0] is not None:
            refused[staff_id] = Refused(
                f"staff {staff_id!r} has left; they take no new assignments")
        elif assigned and found[staff_id][1] in NEVER_ASSIGNED:
            role = found[staff_id][1]
            refused[staff_id] = Refused(
                f"staff {staff_id!r} is {role} in the directory: a {role} owns no "
                "customers and is assigned no cases or tasks")
    return refused


def check_assignable(session: Session | Connection, require_known: bool,
                     staff_ids: Iterable[str | None], *, assigned: bool = False) -> None:
    """Raise the first error :func:`refused_staff` finds."""
    for error in refused_staff(session, require_known, staff_ids, assigned=assigned).values():
        raise error


def _staff_model(row: StaffRow) -> Staff:
    return Staff(id=row.id, name=row.name, role=row.role, department=row.department,
                 manager=row.manager, email=row.email, mobile=row.mobile,
                 active=row.left_at is None, left_at=row.left_at)


def _validated(model: Any, data: Any) -> Any:
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidInput(*first_error(exc)) from None


class DirectoryService:
    """``crm.directory``: departments and staff."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # -- departments ------------------------------------------------------------------------
    def add_department(self, data: DepartmentIn | Mapping[str, Any],
                       actor: Actor | None = None) -> Department:
        """Add a department with the projects it is responsible for; an existing code
        is refused."""
        dept: DepartmentIn = _validated(DepartmentIn, data)
        codes = list(dict.fromkeys(project_code(p) for p in dept.projects))
        with self.crm.unit_of_work(actor) as uow:
            if uow.session.get(DepartmentRow, dept.code) is not None:
                raise Refused(f"department {dept.code!r} exists")
            uow.session.add(DepartmentRow(code=dept.code, name=dept.name, email=dept.email,
                                          created_at=utcnow()))
            uow.session.flush()
            for code in codes:
                uow.session.add(DepartmentProjectRow(department=dept.code,
                                                     project_id=project_id_in(uow, code)))
            try:
                uow.session.flush()
            except IntegrityError:  # added by another process meanwhile
                raise Refused(f"department {dept.code!r} exists") from None
        return Department(code=dept.code, name=dept.name, email=dept.email, projects=codes)

    def departments(self) -> list[Department]:
        with self.crm.unit_of_work(readonly=True) as uow:
            projects: dict[str, list[str]] = {}
            for dept, code in uow.session.execute(
                select(DepartmentProjectRow.department, ProjectRow.code)
                .join(ProjectRow, ProjectRow.id == DepartmentProjectRow.project_id)
                .order_by(ProjectRow.code)
            ):
                projects.setdefault(dept, []).append(code)
            return [
                Department(code=row.code, name=row.name, email=row.email,
                           projects=projects.get(row.code, []))
                for row in uow.session.scalars(select(DepartmentRow).order_by(DepartmentRow.code))
            ]

    # -- staff ------------------------------------------------------------------------------
    def add_staff(self, data: StaffIn | Mapping[str, Any], actor: Actor | None = None) -> Staff:
        """Add a member of staff; their department and manager must be in the directory."""
        staff: StaffIn = _validated(StaffIn, data)
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            if session.get(StaffRow, staff.id) is not None:
                raise Refused(f"staff {staff.id!r} exists")
            if staff.department and session.get(DepartmentRow, staff.department) is None:
                raise NotFound(f"no such department {staff.department!r}")
            if staff.manager:
                if staff.manager == staff.id:
                    raise InvalidInput("manager", "a member of staff is not their own manager")
                if session.get(StaffRow, staff.manager) is None:
                    raise NoSuchStaff(staff.manager)
            row = StaffRow(id=staff.id, name=staff.name, role=staff.role,
                           department=staff.department, manager=staff.manager,
                           email=staff.email, mobile=staff.mobile, created_at=utcnow())
            session.add(row)
            try:
                session.flush()
            except IntegrityError:  # added by another process meanwhile
                raise Refused(f"staff {staff.id!r} exists") from None
            return _staff_model(row)

    def staff(self, department: str | None = None) -> list[Staff]:
        """Everyone in the directory (those who left too), by id."""
        with self.crm.unit_of_work(readonly=True) as uow:
            query = select(StaffRow).order_by(StaffRow.id)
            if department is not None:
                if uow.session.get(DepartmentRow, department) is None:
                    raise NotFound(f"no such department {department!r}")
                query = query.where(StaffRow.department == department)
            return [_staff_model(row) for row in uow.session.scalars(query)]

    def get(self, staff_id: str) -> Staff:
        with self.crm.unit_of_work(readonly=True) as uow:
            row = uow.session.get(StaffRow, staff_id)
            if row is None:
                raise NoSuchStaff(staff_id)
            return _staff_model(row)

    def role_of(self, staff_id: str) -> str | None:
        """The directory's role of ``staff_id`` (None if not in it)."""
        with self.crm.unit_of_work(readonly=True) as uow:
            return uow.session.scalar(select(StaffRow.role).where(StaffRow.id == staff_id))

    def find(self, session: Session | Connection, staff_id: str) -> Staff | None:
        """The member of staff ``staff_id`` inside a running operation, or None."""
        row = session.execute(select(StaffRow).where(StaffRow.id == staff_id)).scalar()
        return _staff_model(row) if isinstance(row, StaffRow) else None

    def leave(self, staff_id: str, actor: Actor | None = None, *,
              reassign_to: str | None = None, to_pool: bool = False) -> Staff:
        """Mark a member of staff as gone: history keeps them, new assignments are
        refused. Leaving twice is refused. In the same transaction, their customers
        move to ``reassign_to`` or, with ``to_pool``, are released to the public pool
        (reason ``staff_left``)."""
        if reassign_to is not None and to_pool:
            raise InvalidInput("reassign_to", "give a colleague or the pool, not both")
        if reassign_to is not None:
            try:
                reassign_to = required_code(reassign_to, "staff id", 64)
            except ValueError as exc:
                raise InvalidInput("reassign_to", str(exc)) from None
        if reassign_to == staff_id:
            raise InvalidInput("reassign_to", "a colleague who stays, not the one leaving")
        with self.crm.unit_of_work(actor) as uow:
            row = uow.session.get(StaffRow, staff_id, with_for_update=True)
            if row is None:
                raise NoSuchStaff(staff_id)
            if row.left_at is not None:
                raise Refused(f"staff {staff_id!r} already left")
            if reassign_to is not None:
                self.crm.customers.reassign_in(uow, staff_id, reassign_to)
            elif to_pool:
                self.crm.pool.release_staff_in(uow, staff_id, None, "staff_left", utcnow())
            row.left_at = utcnow()
            uow.session.flush()
            return _staff_model(row)

    def owned_links(self, staff_id: str) -> int:
        """How many customer-project links ``staff_id`` owns (what leaving hands over)."""
        with self.crm.unit_of_work(readonly=True) as uow:
            return uow.session.scalar(select(func.count()).select_from(CustomerProjectRow)
                                      .where(CustomerProjectRow.owner_staff == staff_id)) or 0

    def unknown_ids(self) -> list[str]:
        """Staff ids in use (owners, interactions, cases and their history, the audit)
        that the directory lacks."""
        used = union(
            select(CustomerProjectRow.owner_staff.label("sid")),
            select(InteractionRow.staff),
            select(CaseRow.assignee),
            select(CaseHistoryRow.actor_staff),
            select(AuditRow.actor_staff),
        ).subquery()
        with self.crm.unit_of_work(readonly=True) as uow:
            return list(uow.session.scalars(
                select(used.c.sid)
                .where(used.c.sid.is_not(None), used.c.sid.not_in(select(StaffRow.id)))
                .order_by(used.c.sid)
            ))

    def check(self, uow: UnitOfWork, staff_ids: Iterable[str | None]) -> None:
        """Refuse staff ids that may take no new assignment as an owner or an assignee
        (see :func:`check_assignable`)."""
        uow.check_staff(staff_ids, assigned=True)
