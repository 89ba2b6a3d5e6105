"""``/v1/projects`` and ``/v1/staff``: the project registry and the staff directory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from ..access import require_role
from ..crm import CRM
from ..models import Project, ProjectIn, Staff
from .auth import CurrentActor, crm_of
from .bodies import JsonBody
from .idempotency import IdempotentRoute
from .problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["directory"], route_class=IdempotentRoute,
                   responses=PROBLEM_RESPONSES)
Crm = Annotated[CRM, Depends(crm_of)]
#: who reads the staff directory (a partner, an agency's agent, does not)
STAFF_READERS = ("admin", "manager", "sales", "service", "analyst")


@router.get("/projects", response_model=list[Project])
def projects_list(crm: Crm, actor: CurrentActor) -> list[Project]:
    """Every project, by code."""
    return crm.projects.list()


@router.post("/projects", response_model=Project, status_code=status.HTTP_201_CREATED)
def projects_add(project: JsonBody[ProjectIn], crm: Crm, actor: CurrentActor) -> Project:
    """Add a project (409 if its code exists)."""
    return crm.projects.add(project, actor=actor)


@router.get("/projects/{code}", response_model=Project)
def projects_get(code: Annotated[str, Path(max_length=64)], crm: Crm,
                 actor: CurrentActor) -> Project:
    """One project by code."""
    return crm.projects.get(code)


@router.get("/staff", response_model=list[Staff])
def staff_list(crm: Crm, actor: CurrentActor,
               department: Annotated[str | None, Query(max_length=64)] = None) -> list[Staff]:
    """The staff directory (those who left too), by id."""
    require_role(actor, STAFF_READERS, "read the staff directory")
    return crm.directory.staff(department)


@router.get("/staff/{staff_id}", response_model=Staff)
def staff_get(staff_id: Annotated[str, Path(max_length=64)], crm: Crm,
              actor: CurrentActor) -> Staff:
    """One member of staff."""
    require_role(actor, STAFF_READERS, "read the staff directory")
    return crm.directory.get(staff_id)
