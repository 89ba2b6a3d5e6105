"""Incidents: one event behind many service cases (a leaking building, a delayed
handover), with its own status and owner.

Cases are linked to an incident (each link a history row ``incident`` on the case);
closing the incident can resolve its open cases together, each with its own history
row and ``recrm_case_status_changed``. The incident's title and description describe
the event, not a person; a customer's export lists the incidents of their cases, and
an erasure removes the description and resolution of an incident whose every case is
the erased customer's (an incident shared with others is theirs too, so it stays).
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, field_validator
from sqlalchemy import func, select

from .access import case_for, check_writer, scope_of
from .cases import ACTIVE, _lock
from .db import UnitOfWork, utcnow, valid_id
from .errors import Forbidden, InvalidInput, NotFound, Refused
from .models import Actor, BodyText, Case, Code, _Model, _Out, first_error
from .models.base import scalar
from .projects import project_code, project_id_in
from .tables import CaseRow, IncidentRow, ProjectRow
from .values import optional_text, required_text

if TYPE_CHECKING:
    from .crm import CRM


class IncidentIn(_Model):
    """A new incident."""

    title: str = Field(description="one line (at most 200 characters)")
    description: BodyText = Field(default=None, description="free text")
    project: str | None = Field(default=None, description="project code, if it concerns one")
    owner: Code = Field(default=None, description="staff member in charge")
    department: Code = Field(default=None, description="department in charge")

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, v: Any) -> str:
        return required_text(scalar(v), "incident title", 200)


class Incident(_Out):
    """An incident and the cases linked to it."""

    id: int = Field(description="incident id")
    title: str = Field(description="one line")
    description: str | None = Field(default=None, description="free text")
    project: str | None = Field(default=None, description="project code, if any")
    status: Literal["open", "closed"] = Field(description="open or closed")
    owner: str | None = Field(default=None, description="staff member in charge")
    department: str | None = Field(default=None, description="department in charge")
    opened_at: dt.datetime = Field(description="when it was opened (UTC)")
    closed_at: dt.datetime | None = Field(default=None, description="when it was closed (UTC)")
    resolution: str | None = Field(default=None, description="the note it was closed with")
    cases: list[Case] = Field(default_factory=list, description="linked cases, no history")


def _note(note: str | None) -> str | None:
    try:
        return optional_text(note, 20_000)
    except ValueError as exc:
        raise InvalidInput("note", f"note {exc}") from None


def _reader(actor: Actor | None) -> None:
    # An incident gathers many customers' cases: an agency's partner sees none of it.
    if actor is not None and actor.role == "partner":
        raise Forbidden("role partner may not read incidents")


class IncidentService:
    """``crm.incidents``: open, link, show and close incidents."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def open(self, data: IncidentIn | Mapping[str, Any], actor: Actor | None = None) -> Incident:
        check_writer(actor)
        try:
            record = data if isinstance(data, IncidentIn) else IncidentIn.model_validate(
                dict(data))
        except ValidationError as exc:
            raise InvalidInput(*first_error(exc)) from None
        with self.crm.unit_of_work(actor) as uow:
            self.crm.directory.check(uow, [record.owner])
            row = IncidentRow(
                title=record.title, description=record.description or None,
                project_id=project_id_in(uow, project_code(record.project))
                if record.project else None,
                status="open", owner=record.owner, department=record.department,
                opened_at=utcnow())
            uow.session.add(row)
            uow.session.flush()
            return self._model(uow, row)

    def link(self, incident_id: int, case_ids: Iterable[int], note: str | None = None,
             actor: Actor | None = None) -> Incident:
        """Link cases to an open incident (a case moves from another incident)."""
        from .cases import CaseService

        check_writer(actor)
        note = _note(note)
        ids = sorted(set(case_ids))
        if not ids:
            raise InvalidInput("cases", "name at least one case")
        with self.crm.unit_of_work(actor) as uow:
            row = self._lock(uow, incident_id)
            if row.status != "open":
                raise Refused(f"incident {row.id} is closed: cases are linked to open ones")
            now = utcnow()
            for case_id in ids:
                case = _lock(uow.session, case_id)
                if case.incident_id == row.id:
                    continue
                CaseService.record(uow, case, "incident",
                                   None if case.incident_id is None else str(case.incident_id),
                                   str(row.id), note, now)
                case.incident_id, case.updated_at = row.id, now
            uow.session.flush()
            return self._model(uow, row)

    def close(self, incident_id: int, *, resolve_cases: bool = False, note: str | None = None,
              actor: Actor | None = None) -> Incident:
        """Close an open incident; ``resolve_cases`` resolves its active cases together,
        each with its own history row (``incident N closed``)."""
        check_writer(actor)
        note = _note(note)
        with self.crm.unit_of_work(actor) as uow:
            row = self._lock(uow, incident_id)
            if row.status != "open":
                raise Refused(f"incident {row.id} is closed already")
            now = utcnow()
            row.status, row.closed_at, row.resolution = "closed", now, note
            if resolve_cases:
                why = f"incident {row.id} closed" + (f": {note}" if note else "")
                for case_id in uow.session.scalars(select(CaseRow.id).where(
                        CaseRow.incident_id == row.id, CaseRow.status.in_(ACTIVE))
                        .order_by(CaseRow.id)):
                    case = _lock(uow.session, case_id)
                    self.crm.cases.transition_in(uow, case, "resolve", why)
            uow.session.flush()
            return self._model(uow, row)

    def get(self, incident_id: int, actor: Actor | None = None) -> Incident:
        """One incident with its cases, as the actor may read them."""
        _reader(actor)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            row = uow.session.get(IncidentRow, incident_id) if valid_id(incident_id) else None
            if row is None:
                raise NotFound(f"no incident {incident_id}")
            found = self._model(uow, row)
            scope = scope_of(uow.session, actor)
            return found.model_copy(update={"cases": [case_for(scope, c) for c in found.cases]})

    def list(self, *, status: str | None = None,
             actor: Actor | None = None) -> builtins.list[Incident]:
        """Incidents, newest first, each with its case count in ``cases`` left empty
        (``get`` lists them)."""
        _reader(actor)
        if status not in (None, "open", "closed"):
            raise InvalidInput("status", "status is open or closed")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(IncidentRow).order_by(IncidentRow.id.desc())
            if status:
                query = query.where(IncidentRow.status == status)
            return [self._model(uow, r, with_cases=False) for r in uow.session.scalars(query)]

    def counts(self, actor: Actor | None = None) -> dict[int, int]:
        """Linked cases per incident."""
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            return {i: int(n) for i, n in uow.session.execute(
                select(CaseRow.incident_id, func.count()).where(CaseRow.incident_id.is_not(None))
                .group_by(CaseRow.incident_id)) if i is not None}

    @staticmethod
    def _lock(uow: UnitOfWork, incident_id: int) -> IncidentRow:
        row = uow.session.scalar(select(IncidentRow).where(IncidentRow.id == incident_id)
                                 .with_for_update()) if valid_id(incident_id) else None
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return row

    def _model(self, uow: UnitOfWork, row: IncidentRow, with_cases: bool = True) -> Incident:
        session = uow.session
        code = session.scalar(select(ProjectRow.code).where(ProjectRow.id == row.project_id)) \
            if row.project_id else None
        cases = self.crm.cases.list_linked(session, row.id) if with_cases else []
        return Incident(id=row.id, title=row.title, description=row.description, project=code,
                        status="closed" if row.status == "closed" else "open", owner=row.owner,
                        department=row.department, opened_at=row.opened_at,
                        closed_at=row.closed_at, resolution=row.resolution, cases=cases)
