"""The demo's summary: what the database holds once seeded, counted (funnel per
project, cases, consents, follow-ups, the pool) with each plugin's own section."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from sqlalchemy import case as sql_case
from sqlalchemy import func, select

from ..consent import CHANNELS, PURPOSES, consent_granted_clause
from ..db import utcnow
from ..tables import (
    CustomerProjectRow,
    CustomerRow,
    InteractionRow,
    ProjectRow,
    TaskRow,
)
from ..values import STAGES
from .anchor import demo_anchor
from .company import _PRIORITIES

if TYPE_CHECKING:
    from ..crm import CRM


@dataclass
class DemoSection:
    """A plugin's section of the demo summary: a title and (label, value) rows."""

    #: the section's heading
    title: str
    #: (label, value) lines of the section
    rows: list[tuple[str, str]] = field(default_factory=list)


class ProjectSummary(BaseModel):
    """One project in the demo summary; ``funnel`` counts customers at each stage now."""

    code: str
    name: str
    customers: int
    funnel: dict[str, int]
    sources: dict[str, int]
    contracts: int
    contract_value: int
    handovers: int


class CaseCount(BaseModel):
    category: str
    priority: str
    total: int
    open: int
    overdue: int


class CasesSummary(BaseModel):
    total: int
    by_status: dict[str, int]
    open: int
    overdue: int
    breakdown: list[CaseCount]
    #: cases at each escalation level, and by intake channel
    by_level: dict[str, int] = Field(default_factory=dict)
    by_channel: dict[str, int] = Field(default_factory=dict)


class ConsentCount(BaseModel):
    channel: str
    purpose: str
    customers: int


class ConsultantFollowups(BaseModel):
    """One consultant's open follow-up tasks in the demo summary."""

    staff: str
    open: int
    overdue: int


class PoolCount(BaseModel):
    project: str
    in_pool: int
    released: int
    claimed: int


class FollowupsSummary(BaseModel):
    """Follow-up tasks and the public pool. ``overdue`` counts the open tasks due before
    today (business time zone): a figure that does not change with the time of day."""

    open: int = 0
    done: int = 0
    overdue: int = 0
    by_consultant: list[ConsultantFollowups] = []
    pool: list[PoolCount] = []


class DemoSummary(BaseModel):
    """What ``recrm demo`` prints (``--json`` prints exactly this)."""

    seed: int
    customers: int
    at_two_projects: int
    stages: dict[str, int]
    projects: list[ProjectSummary]
    interactions: dict[str, int]
    cases: CasesSummary
    consents: list[ConsentCount]
    suspected_duplicates: int
    followups: FollowupsSummary = FollowupsSummary()
    plugins: list[DemoSection]


def summarise(
    crm: CRM,
    *,
    seed: int,
    sections: Sequence[DemoSection] = (),
    now: dt.datetime | None = None,
) -> DemoSummary:
    """Count what the database holds: funnel per project, cases, consents."""
    now = now or utcnow()
    with crm.unit_of_work() as uow:
        session = uow.session
        active = CustomerRow.merged_into.is_(None)
        total = session.scalar(select(func.count()).select_from(CustomerRow).where(active)) or 0
        stages: dict[str, int] = dict.fromkeys(STAGES, 0)
        for stage, n in session.execute(
            select(CustomerRow.stage, func.count()).where(active).group_by(CustomerRow.stage)
        ):
            stages[stage] = int(n)
        linked = (
            select(CustomerProjectRow.customer_id)
            .group_by(CustomerProjectRow.customer_id)
            .having(func.count() > 1)
            .subquery()
        )
        at_two = session.scalar(select(func.count()).select_from(linked)) or 0
        funnels: dict[int, dict[str, int]] = {}
        for pid, stage, n in session.execute(
            select(CustomerProjectRow.project_id, CustomerProjectRow.stage, func.count())
            .group_by(CustomerProjectRow.project_id, CustomerProjectRow.stage)
        ):
            funnels.setdefault(pid, dict.fromkeys(STAGES, 0))[stage] = int(n)
        sources: dict[int, dict[str, int]] = {}
        for pid, source, n in session.execute(
            select(CustomerProjectRow.project_id, CustomerProjectRow.source, func.count())
            .group_by(CustomerProjectRow.project_id, CustomerProjectRow.source)
        ):
            sources.setdefault(pid, {})[source or "unknown"] = int(n)
        contracts: Counter[int] = Counter()
        value: Counter[int] = Counter()
        handovers: Counter[int] = Counter()
        for pid, kind, data in session.execute(
            select(InteractionRow.project_id, InteractionRow.kind, InteractionRow.data).where(
                InteractionRow.kind.in_(("contract", "handover")),
                InteractionRow.project_id.is_not(None),
            )
        ):
            if kind == "contract":
                contracts[pid] += 1
                value[pid] += int((data or {}).get("amount") or 0)
            else:
                handovers[pid] += 1
        projects = [
            ProjectSummary(
                code=code,
                name=name,
                customers=sum(funnels.get(pid, {}).values()),
                funnel=funnels.get(pid, dict.fromkeys(STAGES, 0)),
                sources=dict(sorted(sources.get(pid, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
                contracts=contracts[pid],
                contract_value=value[pid],
                handovers=handovers[pid],
            )
            for pid, code, name in session.execute(
                select(ProjectRow.id, ProjectRow.code, ProjectRow.name).order_by(ProjectRow.id)
            )
        ]
        interactions = {
            kind: int(n)
            for kind, n in session.execute(
                select(InteractionRow.kind, func.count())
                .group_by(InteractionRow.kind)
                .order_by(func.count().desc(), InteractionRow.kind)
            )
        }
        consents = [
            ConsentCount(
                channel=channel,
                purpose=purpose,
                customers=session.scalar(
                    select(func.count()).select_from(CustomerRow).where(
                        active, consent_granted_clause(CustomerRow.id, channel, purpose)
                    )
                ) or 0,
            )
            for channel in CHANNELS
            for purpose in PURPOSES
        ]
    return DemoSummary(
        seed=seed,
        customers=total,
        at_two_projects=at_two,
        stages=stages,
        projects=projects,
        interactions=interactions,
        cases=_case_summary(crm, now),
        consents=[c for c in consents if c.customers],
        suspected_duplicates=len(crm.customers.duplicates()),
        followups=_followups_summary(crm, now),
        plugins=list(sections),
    )


def _followups_summary(crm: CRM, now: dt.datetime) -> FollowupsSummary:
    """Open and overdue tasks per consultant (overdue: due before today), the pool."""
    today = demo_anchor(crm, now)
    counts: dict[str, ConsultantFollowups] = {}
    status: Counter[str] = Counter()
    with crm.unit_of_work(readonly=True) as uow:
        overdue = func.coalesce(func.sum(sql_case((TaskRow.due_at < today, 1), else_=0)), 0)
        for staff, state, n, late in uow.session.execute(
            select(TaskRow.owner_staff, TaskRow.status, func.count(), overdue)
            .group_by(TaskRow.owner_staff, TaskRow.status)
        ):
            status[state] += n
            if state == "open":
                counts[staff] = ConsultantFollowups(staff=staff, open=n, overdue=late)
    pool = [PoolCount(project=r.project, in_pool=r.in_pool, released=r.released,
                      claimed=r.claimed) for r in crm.pool.report()]
    return FollowupsSummary(
        open=status["open"], done=status["done"],
        overdue=sum(c.overdue for c in counts.values()),
        by_consultant=sorted(counts.values(), key=lambda c: (-c.overdue, c.staff)),
        pool=pool)


def _case_summary(crm: CRM, now: dt.datetime) -> CasesSummary:
    counts = crm.cases.summary(now=now)
    rows: dict[tuple[str, str], CaseCount] = {}
    for case in crm.cases.list(now=now):
        key = (case.category, case.priority)
        row = rows.setdefault(key, CaseCount(category=case.category, priority=case.priority,
                                             total=0, open=0, overdue=0))
        row.total += 1
        if case.status in ("open", "in_progress", "reopened"):
            row.open += 1
        if case.overdue:
            row.overdue += 1
    rank = {p: i for i, p in enumerate(reversed(_PRIORITIES))}
    return CasesSummary(
        total=int(counts["total"]),
        by_status={k: int(v) for k, v in counts["by_status"].items()},
        open=int(counts["unresolved"]),
        overdue=int(counts["overdue"]),
        breakdown=sorted(rows.values(), key=lambda r: (r.category, rank.get(r.priority, 9))),
        by_level=counts["by_level"],
        by_channel=counts["by_channel"],
    )
