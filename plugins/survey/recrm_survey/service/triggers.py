"""What invites: handovers' check-ins, a case's satisfaction survey, yearly surveys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from sqlalchemy import (
    select,
)

from recrm_core import (
    CRM,
    Actor,
    Customer,
    InvalidInput,
    Refused,
    UnitOfWork,
)
from recrm_core.access import require_role

from ..settings import settings
from ..tables import SurveyInvitation
from .clock import _aware, add_months
from .inviting import NewInvitation, blocked_of, invite_in, invite_many_in
from .records import STAFF, Outcome, TriggerResult
from .surveys import definition_in, get_definition


def handover_key(customer_id: int, project: str, unit: str | None, months: int,
                 survey: str) -> str:
    return f"handover:{customer_id}:{project}:{unit or '-'}:{months}:{survey}"


class Handover(NamedTuple):
    """One handover (a step to ``owner`` at a project) that schedules check-ins."""

    customer_id: int
    project: str
    unit: str | None
    handed_over_at: dt.datetime


def schedule_checkins_in(
    uow: UnitOfWork, customer_id: int, project: str, unit: str | None,
    handed_over_at: dt.datetime,
) -> TriggerResult | None:
    """Check-ins at every month of ``handover_schedule_months`` after the handover."""
    return schedule_handovers_in(uow, [Handover(customer_id, project, unit, handed_over_at)])


def schedule_handovers_in(uow: UnitOfWork,
                          handovers: Sequence[Handover]) -> TriggerResult | None:
    """:func:`schedule_checkins_in` for many handovers, in order, with one consent
    query for the batch; the counts over all of them."""
    conf = settings(uow.crm)
    if conf.handover_survey is None or not conf.handover_schedule_months:
        return None
    result = TriggerResult(survey=conf.handover_survey)
    definition_in(uow.session, uow.crm, conf.handover_survey)  # unknown: an error first
    blocked = blocked_of(uow, sorted({h.customer_id for h in handovers}), conf.channel)
    survey = conf.handover_survey
    wanted: list[NewInvitation] = []
    for h in handovers:
        if h.customer_id in blocked:
            # One answer for the whole schedule, asked once rather than per check-in.
            _count(result, "no_consent", None)
            continue
        wanted.extend(NewInvitation(
            h.customer_id, "handover", handover_key(h.customer_id, h.project, h.unit, months,
                                                    survey),
            add_months(h.handed_over_at, months, uow.crm), project=h.project, unit=h.unit,
            months_after=months,
        ) for months in conf.handover_schedule_months)
    for outcome, new_id in invite_many_in(uow, survey, wanted):
        _count(result, outcome, new_id)
    return result


def csat_for_case_in(uow: UnitOfWork, customer_id: int, case_id: int, project: str | None,
                     closed_at: dt.datetime) -> TriggerResult | None:
    conf = settings(uow.crm)
    if conf.csat_survey is None:
        return None
    result = TriggerResult(survey=conf.csat_survey)
    outcome, new_id = invite_in(
        uow, customer_id, conf.csat_survey, trigger="case",
        dedupe_key=f"case:{case_id}:{conf.csat_survey}",
        due_at=closed_at + dt.timedelta(days=conf.invitation_due_days),
        project=project, case_id=case_id,
    )
    return _count(result, outcome, new_id)


def _count(result: TriggerResult, outcome: Outcome, new_id: int | None) -> TriggerResult:
    if outcome == "invited" and new_id is not None:
        result.invited += 1
        result.invitation_ids.append(new_id)
    elif outcome == "already":
        result.already += 1
    else:
        result.no_consent += 1
    return result


def _owner_project(customer: Customer) -> str | None:
    # An owner at several projects gets one yearly survey, about the project handed
    # over most recently (the newest relationship).
    owned = [p for p in customer.projects if p.stage == "owner"]
    if not owned:
        return None
    return max(owned, key=lambda p: (p.first_seen_at, p.project)).project


def _batched(items: Iterator[Customer], size: int) -> Iterator[list[Customer]]:
    batch: list[Customer] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def trigger_yearly(
    crm: CRM,
    *,
    year: int | None = None,
    survey: str | None = None,
    now: dt.datetime | None = None,
    actor: Actor | None = None,
) -> TriggerResult:
    """Invite every owner to the yearly survey, once per customer, survey and year.

    Streams the owners in batches (one transaction each); running it again in the
    same year invites nobody twice (the dedupe key is unique in the database, and
    a survivor of a merge who inherited an invitation is recognised too).
    """
    require_role(actor, STAFF, "invite customers to surveys")
    at = _aware(now, "now")
    conf = settings(crm)
    key = survey or conf.yearly_survey
    if key is None:
        raise Refused("the yearly survey is switched off ([survey] yearly_survey)")
    get_definition(crm, key)
    year = year or at.astimezone(crm.config.zone).year
    if not 2000 <= year <= 2100:  # the range `recrm survey trigger --year` accepts
        raise InvalidInput("year", f"year {year} is not from 2000 to 2100")
    result = TriggerResult(survey=key)
    owners = crm.segments.iter_customers({"field": "project_stage", "op": "eq", "value": "owner"})
    due_at = at + dt.timedelta(days=conf.invitation_due_days)
    for batch in _batched(owners, 500):
        with crm.unit_of_work(actor) as uow:
            invited_before = set(uow.session.scalars(
                select(SurveyInvitation.customer_id).where(
                    SurveyInvitation.customer_id.in_([c.id for c in batch]),
                    SurveyInvitation.trigger == "yearly",
                    SurveyInvitation.survey_key == key, SurveyInvitation.year == year,
                )
            ))
            blocked = blocked_of(uow, [c.id for c in batch], conf.channel)
            wanted: list[NewInvitation] = []
            for customer in batch:
                if customer.id in invited_before:
                    result.already += 1
                    continue
                if customer.id in blocked:
                    result.no_consent += 1
                    continue
                wanted.append(NewInvitation(
                    customer.id, "yearly", f"yearly:{customer.id}:{key}:{year}", due_at,
                    project=_owner_project(customer), year=year))
            for outcome, new_id in invite_many_in(uow, key, wanted):
                _count(result, outcome, new_id)
    return result
