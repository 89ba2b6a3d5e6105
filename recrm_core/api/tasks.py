"""``/v1/tasks`` and ``/v1/pool``: follow-up tasks and the public pool (公海)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, status

from ..crm import CRM
from ..errors import InvalidInput
from ..models import Task, TaskStatus
from ..pool import (
    ClaimIn,
    PoolEntry,
    PoolEvent,
    PoolReportRow,
    PoolSweep,
    ReleaseIn,
    ReleaseResult,
)
from ..tasks import TaskCancelIn, TaskDoneIn, TaskIn, TaskReportRow, TaskSweep
from .auth import CurrentActor, crm_of
from .bodies import JsonBody
from .idempotency import IdempotentRoute
from .problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["tasks"], route_class=IdempotentRoute,
                   responses=PROBLEM_RESPONSES)
Crm = Annotated[CRM, Depends(crm_of)]
TaskId = Annotated[int, Path(ge=1, le=2**31 - 1, description="task id")]
Day = Annotated[dt.date | None, Query()]


def _period(start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidInput("to", "is before from")


# -- tasks ------------------------------------------------------------------------------


@router.post("/tasks", response_model=Task, status_code=status.HTTP_201_CREATED)
def tasks_add(task: JsonBody[TaskIn], crm: Crm, actor: CurrentActor) -> Task:
    """Add a follow-up task (owner: ``staff``, else the caller; a consultant adds only
    their own)."""
    return crm.tasks.add(task, actor=actor)


@router.get("/tasks", response_model=list[Task])
def tasks_list(
    crm: Crm, actor: CurrentActor,
    staff: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[TaskStatus | Literal["all"], Query()] = "open",
    overdue: bool = False,
    due_today: bool = False,
    customer_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    project: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Task]:
    """Tasks, earliest due first (a consultant's key sees its own)."""
    return crm.tasks.list(staff=staff, status=None if status == "all" else status,
                          overdue=overdue, due_today=due_today, customer_id=customer_id,
                          project=project, limit=limit, actor=actor)


@router.post("/tasks/sweep", response_model=TaskSweep)
def tasks_sweep(crm: Crm, actor: CurrentActor) -> TaskSweep:
    """Create the follow-up rules' tasks that are due (admin, manager; idempotent)."""
    return crm.tasks.sweep(actor=actor)


@router.get("/tasks/report", response_model=list[TaskReportRow])
def tasks_report(crm: Crm, actor: CurrentActor,
                 start: Annotated[Day, Query(alias="from")] = None,
                 end: Annotated[Day, Query(alias="to")] = None) -> list[TaskReportRow]:
    """Per consultant, the tasks created from ``from`` to ``to`` (days, included)."""
    _period(start, end)
    return crm.tasks.report(start, end, actor=actor)


@router.get("/tasks/{task_id}", response_model=Task)
def tasks_get(task_id: TaskId, crm: Crm, actor: CurrentActor) -> Task:
    """One task."""
    return crm.tasks.get(task_id, actor=actor)


@router.post("/tasks/{task_id}/done", response_model=Task)
def tasks_done(task_id: TaskId, crm: Crm, actor: CurrentActor,
               body: JsonBody[TaskDoneIn | None] = None) -> Task:
    """Mark an open task done (409 otherwise), with the interaction that did it."""
    return crm.tasks.done(task_id, (body or TaskDoneIn()).interaction_id, actor=actor)


@router.post("/tasks/{task_id}/cancel", response_model=Task)
def tasks_cancel(task_id: TaskId, body: JsonBody[TaskCancelIn], crm: Crm,
                 actor: CurrentActor) -> Task:
    """Cancel an open task, saying why (409 when it is not open)."""
    return crm.tasks.cancel(task_id, body.reason, actor=actor)


# -- the public pool ----------------------------------------------------------------------


@router.get("/pool", response_model=list[PoolEntry])
def pool_list(crm: Crm, actor: CurrentActor,
              project: Annotated[str, Query(min_length=1, max_length=64)],
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[PoolEntry]:
    """A project's pool: its customers without an owner, longest there first."""
    return crm.pool.list(project, limit=limit, actor=actor)


@router.post("/pool/claims", response_model=PoolEvent, status_code=status.HTTP_201_CREATED)
def pool_claim(claim: JsonBody[ClaimIn], crm: Crm, actor: CurrentActor) -> PoolEvent:
    """Take a customer from the pool; 409 naming who has it when someone does (of two
    claims at once exactly one wins), within ``pool.reclaim_days`` for the owner it was
    taken from, or beyond ``pool.max_owned``."""
    return crm.pool.claim(claim.customer_id, claim.project, claim.staff, actor=actor)


@router.post("/pool/releases", response_model=ReleaseResult)
def pool_release(release: JsonBody[ReleaseIn], crm: Crm, actor: CurrentActor) -> ReleaseResult:
    """Release every customer of a consultant (at a project, or all) to the pool."""
    return ReleaseResult(released=crm.pool.release_staff(release.from_staff, release.project,
                                                         actor=actor))


@router.post("/pool/sweep", response_model=PoolSweep)
def pool_sweep(crm: Crm, actor: CurrentActor, dry_run: bool = False) -> PoolSweep:
    """Release the links whose owner has not followed up within ``pool.idle_days``."""
    return crm.pool.sweep(dry_run=dry_run, actor=actor)


@router.get("/pool/report", response_model=list[PoolReportRow])
def pool_report(crm: Crm, actor: CurrentActor,
                start: Annotated[Day, Query(alias="from")] = None,
                end: Annotated[Day, Query(alias="to")] = None) -> list[PoolReportRow]:
    """Per project: released, claimed, median days in the pool, in the pool now."""
    _period(start, end)
    return crm.pool.report(start, end, actor=actor)
