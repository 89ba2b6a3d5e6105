"""Projects (楼盘): looked up by code, created on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import RawSelect
from .errors import InvalidInput, NotFound
from .models import Project
from .tables import ProjectRow
from .values import required_code

if TYPE_CHECKING:
    from .crm import CRM


_RAW_PROJECT_ID = RawSelect(
    select(ProjectRow.__table__.c.id).where(ProjectRow.__table__.c.code == bindparam("code"))
)


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


def project_id_of(session: Session, code: str) -> int:
    found = session.scalar(select(ProjectRow.id).where(ProjectRow.code == code))
    if found is None:
        raise NotFound(f"no project {code!r}")
    return found


class ProjectService:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def ensure(self, code: str, name: str | None = None) -> Project:
        """Create project ``code`` if it does not exist; rename it when ``name`` is given."""
        code = project_code(code)
        with self.crm.unit_of_work() as uow:
            pid = ensure_project_id(uow.session, code, name)
            row = uow.session.get_one(ProjectRow, pid)
            if name and row.name != name:
                row.name = name
            return Project(id=row.id, code=row.code, name=row.name)

    def get(self, code: str) -> Project:
        """Project ``code`` (trimmed, NFKC); NotFound if there is none."""
        code = project_code(code)
        with self.crm.unit_of_work(readonly=True) as uow:
            row = uow.session.scalar(select(ProjectRow).where(ProjectRow.code == code))
            if row is None:
                raise NotFound(f"no project {code!r}")
            return Project(id=row.id, code=row.code, name=row.name)

    def list(self) -> list[Project]:
        with self.crm.unit_of_work(readonly=True) as uow:
            rows = uow.session.scalars(select(ProjectRow).order_by(ProjectRow.code))
            return [Project(id=r.id, code=r.code, name=r.name) for r in rows]
