"""The customer's invitations and answers on their timeline (``recrm_timeline``)."""

from __future__ import annotations

from sqlalchemy import select

from recrm_core import Customer, NotFound, TimelineEntry, UnitOfWork

from .service import definition_in as _definition_in
from .settings import NAME
from .tables import SurveyAnswer, SurveyInvitation, SurveyScore


def _title(uow: UnitOfWork, key: str, cache: dict[str, str]) -> str:
    if key not in cache:
        try:
            cache[key] = _definition_in(uow.session, uow.crm, key).title
        except NotFound:
            cache[key] = key
    return cache[key]


def timeline_in(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    session = uow.session
    titles: dict[str, str] = {}
    entries: list[TimelineEntry] = []
    for inv in session.scalars(
        select(SurveyInvitation).where(SurveyInvitation.customer_id == customer.id)
    ).all():
        entries.append(TimelineEntry(
            at=inv.sent_at or inv.created_at, kind="survey_invitation",
            title=f"survey invitation: {_title(uow, inv.survey_key, titles)} ({inv.status})",
            source=NAME,
            data={"invitation_id": inv.id, "survey": inv.survey_key, "trigger": inv.trigger,
                  "status": inv.status, "project": inv.project, "unit": inv.unit,
                  "case_id": inv.case_id, "months_after": inv.months_after,
                  "due_at": inv.due_at.isoformat()},
        ))
    rows = session.scalars(
        select(SurveyAnswer).where(SurveyAnswer.customer_id == customer.id)
    ).all()
    for ans in rows:
        roles: dict[str, int] = {
            str(role): int(value) for role, value in session.execute(
                select(SurveyScore.role, SurveyScore.value)
                .where(SurveyScore.answer_id == ans.id, SurveyScore.role.is_not(None))
            )
        }
        shown = []
        if "nps" in roles:
            shown.append(f"NPS {roles['nps']}")
        if "overall_satisfaction" in roles:
            shown.append(f"satisfaction {roles['overall_satisfaction']}/5")
        detail = f": {', '.join(shown)}" if shown else ""
        entries.append(TimelineEntry(
            at=ans.answered_at, kind="survey_answer",
            title=f"answered {_title(uow, ans.survey_key, titles)}{detail}", source=NAME,
            data={"answer_id": ans.id, "invitation_id": ans.invitation_id,
                  "survey": ans.survey_key, "project": ans.project, "case_id": ans.case_id,
                  "scores": roles},
        ))
    return entries or None
