"""The plugin's hook implementations (re-exported by the package, which is the plugin).

Each hook imports what it runs: loading the plugin imports this module and the
settings only, so a command that runs none of these hooks (``recrm customers count``)
pays for none of the plugin's tables, models or service (docs/plugins.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from recrm_core import hookimpl

from .settings import NAME, MembershipSettings

if TYPE_CHECKING:  # annotations only
    import datetime as dt

    import click

    from recrm_core import CRM, Customer, ErasureStep, Interaction, TimelineEntry, UnitOfWork
    from recrm_core.api import ApiRoutes
    from recrm_core.models import CustomerStageChange


@hookimpl
def recrm_register_settings(register: Any) -> None:
    register(NAME, MembershipSettings)


@hookimpl
def recrm_reports(register: Any) -> None:
    # membership.points and membership.referrals, the figures of `member report`
    # per project and period; imported here, so start-up does not load them.
    from .reports import SPECS

    for spec in SPECS:
        register(spec)


@hookimpl
def recrm_declare_tables() -> None:
    # The package imports its tables only when the core needs them (docs/plugins.md).
    from . import tables  # noqa: F401


@hookimpl
def recrm_register_audit_actions(register: Any) -> None:
    # An expiry run writes off points of many members at once: recorded, with counts.
    from .service import EXPIRE_ACTION

    register(EXPIRE_ACTION, "points past their expiry written off (members and points counted)")


@hookimpl
def recrm_interactions_logged(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    # Points for the members' earning interactions (see triggers.py).
    from .triggers import interactions_logged_in

    interactions_logged_in(uow, interactions)


@hookimpl
def recrm_stages_changed(uow: UnitOfWork, changes: Sequence[CustomerStageChange]) -> None:
    # Enrolment of new owners, contracts and tiers, referrals converted (see triggers.py).
    from .triggers import stages_changed_in

    stages_changed_in(uow, changes)


@hookimpl
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    from .service import merge_in

    merge_in(uow, survivor, duplicate_id)


@hookimpl
def recrm_customer_export(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    # Member record, ledger, tier changes, history and referrals; see privacy.py.
    from .privacy import export_in

    return export_in(uow, customer)


@hookimpl
def recrm_customer_erase(uow: UnitOfWork, customer: Customer,
                         merged_ids: list[int]) -> list[ErasureStep] | None:
    # Membership and history deleted; ledger amounts and referrals kept anonymously for
    # the club's totals and the other member's figures; see privacy.py.
    from .privacy import erase_in

    return erase_in(uow, customer, merged_ids)


@hookimpl
def recrm_project_renamed(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    # A pending referral converts when the referred customer signs at its project, which
    # the core then names by the new code. The ledger is append-only and keeps the code
    # each entry was written with.
    from sqlalchemy import update

    from .tables import ReferralRow

    uow.session.execute(
        update(ReferralRow).where(ReferralRow.project == old_code).values(project=new_code)
        .execution_options(synchronize_session=False)
    )


@hookimpl
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    # Enrolment and leaving, tier changes, the ledger, referrals (see timeline.py).
    from .timeline import timeline_in

    return timeline_in(uow, customer)


@hookimpl
def recrm_segment_fields(register: Any) -> None:
    # membership.member, .tier, .points and .number (see segments.py).
    from .segments import fields

    for field in fields():
        register(field)


@hookimpl
def recrm_register_commands(cli: click.Group) -> None:
    from .cli import member_group

    cli.add_command(member_group)


@hookimpl
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    # /v1/membership/members/...: imported here, so no command pays for FastAPI.
    from .api import add_routes

    add_routes(crm, routes)


@hookimpl
def recrm_demo(crm: CRM, rng: Any, customer_ids: list[int], anchor: dt.datetime) -> Any:
    from .demo import seed_demo

    return seed_demo(crm, rng, customer_ids, anchor)


@hookimpl
def recrm_message_fields(uow: UnitOfWork, customers: list[Customer]) -> dict[int, Any] | None:
    # {{ membership.tier }} and {{ membership.number }} in newsletters: active members.
    from sqlalchemy import select

    from .tables import MemberRow

    rows = uow.session.execute(
        select(MemberRow.customer_id, MemberRow.tier, MemberRow.number)
        .where(MemberRow.customer_id.in_([c.id for c in customers]),
               MemberRow.status == "active"))
    return {cid: {"tier": tier, "number": number} for cid, tier, number in rows} or None
