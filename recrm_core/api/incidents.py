"""``/v1/incidents``: one event behind many cases: open, link cases, read, close."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field

from ..crm import CRM
from ..incidents import Incident, IncidentIn
from .auth import CurrentActor, crm_of
from .bodies import JsonBody
from .idempotency import IdempotentRoute
from .problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/incidents", tags=["incidents"], route_class=IdempotentRoute,
                   responses=PROBLEM_RESPONSES)
Crm = Annotated[CRM, Depends(crm_of)]
IncidentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="incident id")]


class LinkIn(BaseModel):
    """Cases to link to an incident."""

    cases: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        min_length=1, max_length=1000, description="case ids")
    note: str | None = Field(default=None, max_length=2000,
                             description="why (kept in each case's history)")


class CloseIn(BaseModel):
    """Closing an incident."""

    resolve_cases: bool = Field(default=False, description="resolve its open cases too")
    note: str | None = Field(default=None, max_length=2000, description="the resolution")


@router.post("", response_model=Incident, status_code=status.HTTP_201_CREATED)
def incidents_open(incident: JsonBody[IncidentIn], crm: Crm, actor: CurrentActor) -> Incident:
    """Open an incident."""
    return crm.incidents.open(incident, actor=actor)


@router.get("", response_model=list[Incident])
def incidents_list(crm: Crm, actor: CurrentActor,
                   status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
                   ) -> list[Incident]:
    """Incidents, newest first (``cases`` empty: read one for its cases)."""
    return crm.incidents.list(status=status, actor=actor)


@router.get("/{incident_id}", response_model=Incident)
def incidents_get(incident_id: IncidentId, crm: Crm, actor: CurrentActor) -> Incident:
    """One incident with its cases."""
    return crm.incidents.get(incident_id, actor=actor)


@router.post("/{incident_id}/cases", response_model=Incident)
def incidents_link(incident_id: IncidentId, body: JsonBody[LinkIn], crm: Crm,
                   actor: CurrentActor) -> Incident:
    """Link cases to an open incident; 409 when it is closed."""
    return crm.incidents.link(incident_id, body.cases, note=body.note, actor=actor)


@router.post("/{incident_id}/close", response_model=Incident)
def incidents_close(incident_id: IncidentId, crm: Crm, actor: CurrentActor,
                    body: JsonBody[CloseIn | None] = None) -> Incident:
    """Close an incident (and resolve its open cases with ``resolve_cases``); 409 when it
    is closed already."""
    given = body or CloseIn()
    return crm.incidents.close(incident_id, resolve_cases=given.resolve_cases,
                               note=given.note, actor=actor)
