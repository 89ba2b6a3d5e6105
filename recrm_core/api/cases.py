"""``/v1/cases``: open, list, read, and the lifecycle actions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, status

from ..actions import CaseActionIn
from ..crm import CRM
from ..errors import InvalidInput
from ..models import Case, CaseIn, CaseStatus, IntakeChannel
from .auth import CurrentActor, crm_of
from .bodies import JsonBody
from .idempotency import IdempotentRoute
from .problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/cases", tags=["cases"], route_class=IdempotentRoute,
                   responses=PROBLEM_RESPONSES)
Crm = Annotated[CRM, Depends(crm_of)]
CaseId = Annotated[int, Path(ge=1, le=2**31 - 1, description="case id")]
CaseAction = Literal["start", "resolve", "close", "reopen", "escalate", "transfer", "route"]


@router.post("", response_model=Case, status_code=status.HTTP_201_CREATED)
def cases_open(case: JsonBody[CaseIn], crm: Crm, actor: CurrentActor) -> Case:
    """Open a case for a customer; its SLA is counted from now."""
    opened = crm.cases.open(case, actor=actor)
    return crm.cases.get(opened.id, actor=actor)


@router.get("", response_model=list[Case])
def cases_list(
    crm: Crm, actor: CurrentActor,
    status: Annotated[CaseStatus | None, Query()] = None,
    overdue: bool = False,
    customer_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    project: Annotated[str | None, Query(max_length=64)] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[IntakeChannel | None, Query(description="how it came in")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Case]:
    """Cases matching every filter, earliest due first, without history."""
    return crm.cases.list(status=status, overdue=overdue, customer_id=customer_id,
                          project=project, assignee=assignee, department=department,
                          channel=channel, limit=limit, actor=actor)


@router.get("/{case_id}", response_model=Case)
def cases_get(case_id: CaseId, crm: Crm, actor: CurrentActor) -> Case:
    """One case with its history."""
    return crm.cases.get(case_id, actor=actor)


@router.post("/{case_id}/{action}", response_model=Case)
def cases_act(case_id: CaseId, action: CaseAction, crm: Crm, actor: CurrentActor,
              body: JsonBody[CaseActionIn | None] = None) -> Case:
    """A lifecycle action: start, resolve, close, reopen, escalate (one level up), route
    (again, by the routing rules), or transfer (to a ``department`` and/or
    ``assignee``); 409 when the case's status (or level, or the rules) refuses it."""
    given = body or CaseActionIn()
    if action != "transfer" and (given.department or given.assignee):
        raise InvalidInput("department" if given.department else "assignee",
                           f"only a transfer takes a department or assignee, not {action}")
    cases = crm.cases
    if action == "transfer":
        cases.transfer(case_id, given.department, given.assignee, given.note, actor=actor)
    elif action == "escalate":
        cases.escalate(case_id, given.note, actor=actor)
    elif action == "route":
        cases.route(case_id, actor=actor)
    elif action == "start":
        cases.start(case_id, actor=actor, note=given.note)
    else:
        {"resolve": cases.resolve, "close": cases.close, "reopen": cases.reopen}[action](
            case_id, given.note, actor=actor)
    return cases.get(case_id, actor=actor)
