"""recrm-survey: NPS/CSAT surveys, check-ins after the handover, the L3 loyalty
index, and closing the loop on unhappy answers.

Written against the public API of ``recrm_core`` only, like any third-party plugin:

- ``recrm_case_status_changed``: a case closed -> a CSAT invitation;
- ``recrm_stages_changed``: a handover (stage ``owner``) -> check-ins at 3, 11, 23
  and 35 months, carrying the project and unit;
- ``recrm survey trigger --yearly``: every owner once a year;
- ``recrm survey send``: due invitations leave through ``crm.send_message``, each
  claimed in the database first (an outbox), so none is sent twice;
- an answer at or below the detractor threshold opens a service case in the
  answer's transaction (``crm.cases.open_in``);
- who sees what: every read takes the ``actor`` and follows ``crm.access``
  (partners are refused invitations and answers, analysts read no free text or
  link tokens, only admins send; each send run is audited as ``bulk_send``);
- ``recrm_api_routes``: ``GET /v1/survey/scores`` and ``/v1/survey/drivers`` (see
  :mod:`recrm_survey.api`), and the survey page ``/s/<token>`` the invitation links
  to (public, see :mod:`recrm_survey.pages`);
- ``recrm_reports``: ``survey.scores``, the NPS/CSAT/L3 trends per project and
  period (``recrm report survey.scores``; see :mod:`recrm_survey.reports`);
- ``recrm_timeline``, ``recrm_segment_fields`` (``survey.last_nps``,
  ``survey.last_csat``, ``survey.answers``), ``recrm_customer_merged`` and
  ``recrm_demo``;
- privacy requests: ``recrm_customer_export`` and ``recrm_customer_erase`` (answers
  stay for the scores, anonymously; see :mod:`recrm_survey.privacy`).

See ``README.md`` beside ``pyproject.toml`` for settings and decisions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import ColumnElement, func, select, update

from recrm_core import (
    CRM,
    Case,
    Customer,
    DemoSection,
    ErasureStep,
    NotFound,
    SegmentField,
    TimelineEntry,
    UnitOfWork,
    hookimpl,
    utcnow,
)

from .definitions import (
    BUILTIN,
    FACTOR_ROLES,
    L3_ROLES,
    ROLES,
    Question,
    SurveyBody,
    SurveyDefinition,
    validate_answers,
)
from .privacy import erase_in as _erase_in
from .privacy import export_in as _export_in
from .scores import Driver, Score, drivers, scores
from .service import (
    Answer,
    AnswerItem,
    Handover,
    Invitation,
    SendResult,
    SurveyInfo,
    TriggerResult,
    answer,
    answer_many,
    answers,
    define_survey,
    due,
    expire,
    get_definition,
    invitations,
    invite,
    list_surveys,
    send_due,
    trigger_yearly,
)
from .service import (
    csat_for_case_in as _csat_for_case_in,
)
from .service import (
    definition_in as _definition_in,
)
from .service import (
    schedule_handovers_in as _schedule_handovers_in,
)
from .settings import NAME, SurveySettings, settings
from .tables import SurveyAnswer, SurveyInvitation, SurveyScore

if TYPE_CHECKING:
    # CustomerStageChange: the batch hook's item; the core does not export it at
    # the top level yet.
    from recrm_core.api import ApiRoutes
    from recrm_core.models import CustomerStageChange

#: the plugin's name: settings section, table prefix, segment-field prefix
name = NAME
__version__ = "0.1.0"


# -- settings and commands -------------------------------------------------------------------


@hookimpl
def recrm_register_settings(register: Any) -> None:
    register(NAME, SurveySettings)


@hookimpl
def recrm_register_commands(cli: click.Group) -> None:
    from .cli import survey_group

    cli.add_command(survey_group)


@hookimpl
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    # GET /v1/survey/scores and /v1/survey/drivers, and the survey page /s/<token>
    # (public): imported here, so no command pays for FastAPI or Jinja2.
    from .api import add_routes
    from .pages import add_pages

    add_routes(crm, routes)
    add_pages(crm, routes)


@hookimpl
def recrm_reports(register: Any) -> None:
    # survey.scores: the scores of `recrm survey scores` as a registered report;
    # imported here, so start-up does not load the report model.
    from .reports import SPEC

    register(SPEC)


# -- triggers (inside the operation's transaction) ----------------------------------------------


@hookimpl
def recrm_stages_changed(uow: UnitOfWork, changes: Sequence[CustomerStageChange]) -> None:
    # Only a step to owner from another stage schedules: every other change is left
    # here, without a query. A back-dated handover schedules back-dated check-ins;
    # the core always says when the change happened, a StageChange built by hand
    # may not.
    handovers = [
        Handover(item.customer.id, item.change.project, item.change.unit,
                 item.change.occurred_at or utcnow())
        for item in changes
        if item.change.new_stage == "owner" and item.change.old_stage != "owner"
    ]
    if handovers:
        _schedule_handovers_in(uow, handovers)


@hookimpl
def recrm_case_status_changed(uow: UnitOfWork, case: Case, new_status: str) -> None:
    if new_status == "closed":
        _csat_for_case_in(uow, case.customer_id, case.id, case.project,
                          case.closed_at or utcnow())


@hookimpl
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    # Dedupe keys stay as they were (they record what triggered an invitation); the
    # yearly trigger also looks at customer_id, so the survivor is not invited twice.
    for table in (SurveyInvitation, SurveyAnswer):
        uow.session.execute(
            update(table).where(table.customer_id == duplicate_id)
            .values(customer_id=survivor.id)
            .execution_options(synchronize_session=False)
        )


@hookimpl
def recrm_customer_export(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    # Invitations (without link tokens) and answers with their scores; see privacy.py.
    return _export_in(uow, customer)


@hookimpl
def recrm_customer_erase(uow: UnitOfWork, customer: Customer,
                         merged_ids: list[int]) -> list[ErasureStep] | None:
    # Unanswered invitations deleted; answers kept for the scores with their text, unit,
    # token and case link removed; see privacy.py.
    return _erase_in(uow, customer, merged_ids)


@hookimpl
def recrm_project_renamed(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    # Scores group by the code: without this the project's answers would stay under a
    # code no project has. Dedupe keys stay, as on a merge: they record the trigger.
    for table in (SurveyInvitation, SurveyAnswer):
        uow.session.execute(
            update(table).where(table.project == old_code).values(project=new_code)
            .execution_options(synchronize_session=False)
        )


# -- reading -----------------------------------------------------------------------------------


def _title(uow: UnitOfWork, key: str, cache: dict[str, str]) -> str:
    if key not in cache:
        try:
            cache[key] = _definition_in(uow.session, uow.crm, key).title
        except NotFound:
            cache[key] = key
    return cache[key]


@hookimpl
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
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


def _latest(role: str) -> Any:
    def expression(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
        return (
            select(SurveyScore.value)
            .join(SurveyAnswer, SurveyAnswer.id == SurveyScore.answer_id)
            .where(SurveyAnswer.customer_id == customer_id, SurveyScore.role == role)
            .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    return expression


def _answer_count(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return (
        select(func.count()).select_from(SurveyAnswer)
        .where(SurveyAnswer.customer_id == customer_id)
        .scalar_subquery()
    )


@hookimpl
def recrm_segment_fields(register: Any) -> None:
    register(SegmentField(name="survey.last_nps", expression=_latest("nps"), type="int",
                          description="the customer's latest NPS answer (0-10); null if none"))
    register(SegmentField(name="survey.last_csat", expression=_latest("overall_satisfaction"),
                          type="int", description="the customer's latest overall-satisfaction "
                                                  "rating (1-5); null if none"))
    register(SegmentField(name="survey.answers", expression=_answer_count, type="int",
                          description="surveys the customer answered"))


@hookimpl
def recrm_demo(crm: CRM, rng: random.Random, customer_ids: list[int]) -> DemoSection | None:
    from .demo import seed

    return seed(crm, rng, customer_ids)


__all__ = [
    "BUILTIN",
    "FACTOR_ROLES",
    "L3_ROLES",
    "ROLES",
    "Answer",
    "AnswerItem",
    "Driver",
    "Invitation",
    "Question",
    "Score",
    "SendResult",
    "SurveyBody",
    "SurveyDefinition",
    "SurveyInfo",
    "SurveySettings",
    "TriggerResult",
    "answer",
    "answer_many",
    "answers",
    "define_survey",
    "drivers",
    "due",
    "expire",
    "get_definition",
    "invitations",
    "invite",
    "list_surveys",
    "name",
    "scores",
    "send_due",
    "settings",
    "trigger_yearly",
    "validate_answers",
]
