"""The plugin's hook implementations (re-exported by the package, which is the plugin)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from recrm_core import hookimpl

from .settings import NAME, ChannelsSettings

if TYPE_CHECKING:  # annotations only: each hook imports what it runs (docs/plugins.md)
    import datetime as dt

    import click

    from recrm_core import CRM, Customer, ErasureStep, Interaction, UnitOfWork
    from recrm_core.api import ApiRoutes
    from recrm_core.models import CustomerStageChange, StageChange


@hookimpl
def recrm_register_settings(register: Any) -> None:
    register(NAME, ChannelsSettings)


@hookimpl
def recrm_declare_tables() -> None:
    # The package imports its tables only when the core needs them (docs/plugins.md).
    from . import tables  # noqa: F401


@hookimpl
def recrm_register_audit_actions(register: Any) -> None:
    # Every audit action the plugin records (add new ones to AUDIT_ACTIONS or here).
    from .commission import AUDIT_ACTIONS

    for action, description in AUDIT_ACTIONS.items():
        register(action, description)


@hookimpl
def recrm_interactions_logged(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    # 判客 on every visit at a project: the customer's registrations there are replayed.
    visits = [(i, i.project) for i in interactions if i.kind == "visit" and i.project]
    if not visits:
        return
    from .commission import accrue_in
    from .service import judged_in_runs, registered_pairs

    registered = registered_pairs(uow, ((i.customer_id, project) for i, project in visits))
    judged = [(i, project) for i, project in visits if (i.customer_id, project) in registered]
    if not judged:
        return
    last = {i.customer_id: i.id for i in interactions}
    found = uow.crm.customers.get_many_in(uow, {i.customer_id for i, _ in judged})
    # Judged as it was when logged: without the customer's later interactions of the
    # batch.
    for judging, (customer, project, i) in judged_in_runs(uow, [
        (found.get(i.customer_id) or uow.crm.customers.get_in(uow, i.customer_id),
         project, i) for i, project in judged
    ]):
        judging.judge(customer, project, upto=i.id if last[i.customer_id] != i.id else None)
        accrue_in(uow, customer, project)


@hookimpl
def recrm_stages_changed(uow: UnitOfWork, changes: Sequence[CustomerStageChange]) -> None:
    # Only changes with an agency registration have anything to judge, accrue or
    # claw back; the rest cost one query per batch between them.
    from .attribution import CONVERTING
    from .commission import on_stage_changed
    from .service import judged_in_runs, registered_pairs

    registered = registered_pairs(uow, ((c.customer.id, c.change.project) for c in changes))

    def converting(change: StageChange) -> bool:
        # A subscription, contract or handover may convert a confirmed registration.
        return change.new_stage in CONVERTING or (change.step or "") in CONVERTING

    # ``customer`` as right after this change: judged at the stage it had then.
    for judging, (customer, project, change) in judged_in_runs(uow, [
        (item.customer, item.change.project, item.change) for item in changes
        if (item.customer.id, item.change.project) in registered
    ], converting):
        if converting(change):
            judging.judge(customer, project)
        # The commission ledger: accrue what the step earned, or claw back a cancelled deal.
        on_stage_changed(uow, customer, change)


@hookimpl
def recrm_project_renamed(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    # Registrations, rule versions, terms, the ledger and disputes keep the project's
    # code: left under the old one, which no project has, a registered mobile could be
    # registered again by another agency and a replayed contract earned again.
    from sqlalchemy import update

    from .tables import (
        CommissionEntryRow,
        DisputeRow,
        RegistrationRow,
        RuleSetRow,
        TermsRow,
    )

    for table in (RegistrationRow, RuleSetRow, TermsRow, CommissionEntryRow, DisputeRow):
        uow.session.execute(
            update(table).where(table.project == old_code).values(project=new_code)
            .execution_options(synchronize_session=False))
    from .commission import rename_deal_keys_in

    rename_deal_keys_in(uow, old_code, new_code)


@hookimpl
def recrm_customer_export(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    from .privacy import export_in

    return export_in(uow, customer)


@hookimpl
def recrm_customer_erase(uow: UnitOfWork, customer: Customer,
                         merged_ids: list[int]) -> list[ErasureStep] | None:
    from .privacy import erase_in

    return erase_in(uow, customer, merged_ids)


@hookimpl
def recrm_withhold_referral_reward(uow: UnitOfWork, customer: Customer, project: str,
                                   referrer_id: int) -> str | None:
    # referral_vs_agency: an agency's registration against an owner's referral.
    from .commission import withhold_referral_reward_in

    return withhold_referral_reward_in(uow, customer, project, referrer_id)


@hookimpl
def recrm_register_commands(cli: click.Group) -> None:
    from .cli import channel_group

    cli.add_command(channel_group)


@hookimpl
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    # /v1/channels/...: imported here, so no command pays for FastAPI.
    from .api import add_routes

    add_routes(crm, routes)


@hookimpl
def recrm_reports(register: Any) -> None:
    # channels.commission: `recrm channel report` as a registered report; imported
    # here, so start-up does not load it
    from .reports import SPEC

    register(SPEC)


@hookimpl
def recrm_segment_fields(register: Any) -> None:
    # channels.agency and channels.state, read as of now (see segments.py).
    from .segments import fields

    for f in fields():
        register(f)


@hookimpl
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[Any] | None:
    # Each registration's recorded states, with the reason (see timeline.py).
    from .timeline import timeline_in

    return timeline_in(uow, customer) or None


@hookimpl
def recrm_demo(crm: CRM, rng: Any, customer_ids: list[int], anchor: dt.datetime) -> Any:
    from .demo import seed_demo

    return seed_demo(crm, rng, customer_ids, anchor)
