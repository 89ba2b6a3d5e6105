"""Projects (楼盘): a registry of codes. A code is a reference: every link holds the
project's id, so a rename keeps them all, and plugins that keep codes follow through
``recrm_project_renamed``.

Naming an unknown project creates it while ``auto_create_projects`` is on (the
default); reads never create one, and an unknown name is :class:`UnknownProject`
(exit 1) from :func:`known_project_id`, the one check every command uses.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .access import check_writer
from .db import UnitOfWork
from .errors import InvalidInput, Refused, UnknownProject
from .models import Actor, Project, ProjectIn, first_error
from .rawsql import RawSelect
from .tables import ProjectRow
from .values import required_code

if TYPE_CHECKING:
    from .crm import CRM


_RAW_PROJECT_ID = RawSelect(
    select(ProjectRow.__table__.c.id).where(ProjectRow.__table__.c.code == bindparam("code"))
)
#: an unknown name lists the known codes when there are at most this many
KNOWN_LISTED = 10


def project_code(raw: object) -> str:
    """A project code as stored: trimmed, NFKC, without invisible format characters
    (``XL\u200b1`` is ``XL1``, not a second project that prints the same)."""
    try:
        return required_code(raw, "project code", 64)
    except ValueError as exc:
        raise InvalidInput("project", str(exc)) from None


def ensure_project_id(session: Session, code: str, name: str | None = None) -> int:
    """The id of project ``code``, creating it if new (safe against a concurrent creator)."""
    # Called for every stage change and interaction: a prebuilt statement on the
    # driver's cursor, after the autoflush the ORM would have done.
    session.flush()
    rows = _RAW_PROJECT_ID.all(session.connection(), {"code": code})
    if rows:
        return int(rows[0][0])
    try:
        with session.begin_nested():
            row = ProjectRow(code=code, name=name or code)
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        found = session.scalar(select(ProjectRow.id).where(ProjectRow.code == code))
        if found is None:
            raise
        return found


def _read_connection(session: Session | Connection) -> Connection:
    if isinstance(session, Connection):
        return session
    session.flush()
    return session.connection()


def unknown_project(session: Session | Connection, code: str) -> UnknownProject:
    """The error for an unknown ``code``, listing the known codes when there are few."""
    codes = list(
        _read_connection(session).scalars(
            select(ProjectRow.code).order_by(ProjectRow.code).limit(KNOWN_LISTED + 1)
        )
    )
    return UnknownProject(code, codes if len(codes) <= KNOWN_LISTED else None)


def known_project_id(session: Session | Connection, code: str) -> int:
    """The id of project ``code`` (already normalised by :func:`project_code`), or
    UnknownProject: the check for every project named where none may be created."""
    rows = _RAW_PROJECT_ID.all(_read_connection(session), {"code": code})
    if not rows:
        raise unknown_project(session, code)
    return int(rows[0][0])


def project_id_in(uow: UnitOfWork, code: str) -> int:
    """The id of project ``code`` named by a writing operation: created on first use
    while ``auto_create_projects`` is on, else UnknownProject."""
    if uow.crm.config.auto_create_projects:
        # The project exists in nearly every call: read on the connection, and make
        # the session (for the insert) only when it does not.
        rows = _RAW_PROJECT_ID.all(uow.driver, {"code": code})
        if rows:
            return int(rows[0][0])
        return ensure_project_id(uow.session, code)
    return known_project_id(uow.driver, code)


def _model(row: ProjectRow) -> Project:
    return Project(id=row.id, code=row.code, name=row.name, city=row.city,
                   service_department=row.service_department)


class ProjectService:
    """``crm.projects``: the registry of project codes."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def add(self, data: ProjectIn | Mapping[str, Any], actor: Actor | None = None) -> Project:
        """Register a new project; Refused if the code exists (safe against a
        concurrent adder: the UNIQUE code decides)."""
        check_writer(actor)
        record = _validate(data)
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = ProjectRow(code=record.code, name=record.name or record.code,
                             city=record.city, service_department=record.service_department)
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
            except IntegrityError:
                raise Refused(f"project {record.code!r} already exists") from None
            return _model(row)

    def ensure(self, code: str, name: str | None = None) -> Project:
        """Create project ``code`` if it does not exist (whatever
        ``auto_create_projects`` says: this call is explicit); rename it when
        ``name`` is given."""
        code = project_code(code)
        with self.crm.unit_of_work() as uow:
            pid = ensure_project_id(uow.session, code, name)
            row = uow.session.get_one(ProjectRow, pid)
            if name and row.name != name:
                row.name = name
            return _model(row)

    def get(self, code: str) -> Project:
        """Project ``code`` (normalised as :func:`project_code` does); UnknownProject
        (a NotFound, listing the known codes when there are ten or fewer) if none."""
        code = project_code(code)
        with self.crm.unit_of_work(readonly=True) as uow:
            pid = known_project_id(uow.session, code)
            return _model(uow.session.get_one(ProjectRow, pid))

    def list(self) -> builtins.list[Project]:
        """Every project, by code."""
        with self.crm.unit_of_work(readonly=True) as uow:
            rows = uow.session.scalars(select(ProjectRow).order_by(ProjectRow.code))
            return [_model(r) for r in rows]

    def rename(self, old: str, new: str, actor: Actor | None = None) -> Project:
        """Give project ``old`` the code ``new``. Links hold the project's id, so every
        customer, interaction and case stays with it; ``recrm_project_renamed`` lets
        plugins move the codes they keep. Refused if ``new`` is taken."""
        check_writer(actor)
        old_code, new_code = project_code(old), project_code(new)
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            pid = known_project_id(session, old_code)
            if new_code == old_code:
                raise Refused(f"project {old_code!r} already has that code")
            try:
                with session.begin_nested():
                    session.execute(
                        update(ProjectRow).where(ProjectRow.id == pid).values(code=new_code)
                    )
            except IntegrityError:
                raise Refused(
                    f"project {new_code!r} already exists; a rename cannot merge projects"
                ) from None
            self.crm.hooks.project_renamed(uow, old_code, new_code)
            row = session.get_one(ProjectRow, pid)
            session.refresh(row)
            return _model(row)


def _validate(data: ProjectIn | Mapping[str, Any]) -> ProjectIn:
    if isinstance(data, ProjectIn):
        return data
    try:
        return ProjectIn.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidInput(*first_error(exc)) from None
