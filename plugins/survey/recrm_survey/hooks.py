"""The plugin's hook implementations (re-exported by the package, which is the plugin).

Each hook imports what it runs: loading the plugin imports this module and the
settings only, so a command that runs none of these hooks (``recrm customers count``)
pays for none of the plugin's tables, models or service (docs/plugins.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from recrm_core import hookimpl

from .settings import NAME, SurveySettings

if TYPE_CHECKING:  # annotations only
    import datetime as dt
    import random

    import click

    from recrm_core import CRM, Case, Customer, DemoSection, ErasureStep, TimelineEntry, UnitOfWork
    from recrm_core.api import ApiRoutes
    from recrm_core.models import CustomerStageChange


# -- settings and commands -------------------------------------------------------------------


@hookimpl
def recrm_register_settings(register: Any) -> None:
    register(NAME, SurveySettings)


@hookimpl
def recrm_declare_tables() -> None:
    # The package imports its tables only when the core needs them (docs/plugins.md).
    from . import tables  # noqa: F401


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
    from recrm_core import utcnow

    from .service import Handover

    handovers = [
        Handover(item.customer.id, item.change.project, item.change.unit,
                 item.change.occurred_at or utcnow())
        for item in changes
        if item.change.new_stage == "owner" and item.change.old_stage != "owner"
    ]
    if handovers:
        from .service import schedule_handovers_in

        schedule_handovers_in(uow, handovers)


@hookimpl
def recrm_case_status_changed(uow: UnitOfWork, case: Case, new_status: str) -> None:
    if new_status == "closed":
        from recrm_core import utcnow

        from .service import csat_for_case_in

        csat_for_case_in(uow, case.customer_id, case.id, case.project,
                          case.closed_at or utcnow())


@hookimpl
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    # Dedupe keys stay as they were (they record what triggered an invitation); the
    # yearly trigger also looks at customer_id, so the survivor is not invited twice.
    from sqlalchemy import update

    from .tables import SurveyAnswer, SurveyInvitation

    for table in (SurveyInvitation, SurveyAnswer):
        uow.session.execute(
            update(table).where(table.customer_id == duplicate_id)
            .values(customer_id=survivor.id)
            .execution_options(synchronize_session=False)
        )


@hookimpl
def recrm_customer_export(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    # Invitations (without link tokens) and answers with their scores; see privacy.py.
    from .privacy import export_in

    return export_in(uow, customer)


@hookimpl
def recrm_customer_erase(uow: UnitOfWork, customer: Customer,
                         merged_ids: list[int]) -> list[ErasureStep] | None:
    # Unanswered invitations deleted; answers kept for the scores with their text, unit,
    # token and case link removed; see privacy.py.
    from .privacy import erase_in

    return erase_in(uow, customer, merged_ids)


@hookimpl
def recrm_project_renamed(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    # Scores group by the code: without this the project's answers would stay under a
    # code no project has. Dedupe keys stay, as on a merge: they record the trigger.
    from sqlalchemy import update

    from .tables import SurveyAnswer, SurveyInvitation

    for table in (SurveyInvitation, SurveyAnswer):
        uow.session.execute(
            update(table).where(table.project == old_code).values(project=new_code)
            .execution_options(synchronize_session=False)
        )


# -- reading -----------------------------------------------------------------------------------


@hookimpl
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    # Invitations and answers, with their scores (see timeline.py).
    from .timeline import timeline_in

    return timeline_in(uow, customer)


@hookimpl
def recrm_segment_fields(register: Any) -> None:
    # survey.last_nps, survey.last_csat and survey.answers (see segments.py).
    from .segments import fields

    for field in fields():
        register(field)


@hookimpl
def recrm_demo(crm: CRM, rng: random.Random, customer_ids: list[int],
               anchor: dt.datetime) -> DemoSection | None:
    from .demo import seed

    return seed(crm, rng, customer_ids, anchor)
