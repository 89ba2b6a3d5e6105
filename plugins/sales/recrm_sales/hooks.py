"""The plugin's hook implementations (re-exported by the package, which is the plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recrm_core import hookimpl

from .settings import NAME, SalesSettings

if TYPE_CHECKING:  # annotations only: the models are imported by what uses them
    import click

    from recrm_core import CRM, Customer, ErasureStep, UnitOfWork
    from recrm_core.api import ApiRoutes

#: every audit action the plugin records
AUDIT_ACTIONS = {
    "sales.cancel": "a deal was cancelled (退房), with the reason",
    "sales.change_unit": "a deal moved to another unit (换房), with the reason",
    "sales.change_buyer": "a deal's parties changed (更名), with the reason",
}
#: the webhook events the plugin writes
WEBHOOK_EVENTS = {
    "sales.contract_signed": "a deal's contract was signed (签约): deal, unit, contract "
    "number, total",
    "sales.payment_due": "a scheduled payment falls due within the reminder window "
    "(`recrm sales payments remind`): deal, unit, kind, due date, amount outstanding",
}


@hookimpl
def recrm_register_settings(register: Any) -> None:
    register(NAME, SalesSettings)


@hookimpl
def recrm_declare_tables() -> None:
    # The package imports its tables only when the core needs them (docs/plugins.md).
    from . import tables  # noqa: F401


@hookimpl
def recrm_register_audit_actions(register: Any) -> None:
    for action, description in AUDIT_ACTIONS.items():
        register(action, description)


@hookimpl
def recrm_webhook_events(register: Any) -> None:
    for event, description in WEBHOOK_EVENTS.items():
        register(event, description)


@hookimpl
def recrm_project_renamed(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    # Buildings, units, tickets (and their numbering) and deals keep the project's code:
    # left under the old one, which no project has, the project's 销控表 went missing
    # from it while its units were still held and sold under the old code.
    from sqlalchemy import update

    from .tables import BuildingRow, DealRow, TicketRow, TicketSequenceRow, UnitRow

    for table in (BuildingRow, UnitRow, TicketSequenceRow, TicketRow, DealRow):
        uow.session.execute(
            update(table).where(table.project == old_code).values(project=new_code)
            .execution_options(synchronize_session=False))


@hookimpl
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    # The duplicate's holds, tickets, deals and parties become the survivor's: left on
    # the merged-away id, the survivor's deals and privacy export went without them.
    from sqlalchemy import update

    from .tables import DealRow, HoldRow, PartyRow, TicketRow

    for table in (HoldRow, TicketRow, DealRow, PartyRow):
        uow.session.execute(
            update(table).where(table.customer_id == duplicate_id)
            .values(customer_id=survivor.id).execution_options(synchronize_session=False))


@hookimpl
def recrm_customer_export(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    from .privacy import export_in

    return export_in(uow, customer)


@hookimpl
def recrm_customer_erase(uow: UnitOfWork, customer: Customer,
                         merged_ids: list[int]) -> list[ErasureStep] | None:
    from .privacy import erase_in

    return erase_in(uow, customer, merged_ids) or None


@hookimpl
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[Any] | None:
    from .timeline import timeline_in

    return timeline_in(uow, customer) or None


@hookimpl
def recrm_reports(register: Any) -> None:
    # sales.deals: deals, receipts and receivables per project and period (the
    # figures of `sales report`); imported here, so start-up does not load it
    from .reports import SPEC

    register(SPEC)


@hookimpl
def recrm_register_commands(cli: click.Group) -> None:
    from .cli import sales_group

    cli.add_command(sales_group)


@hookimpl
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    # /v1/sales/...: imported here, so no command pays for FastAPI.
    from .api import add_routes

    add_routes(crm, routes)


@hookimpl
def recrm_demo(crm: CRM, rng: Any, customer_ids: list[int]) -> Any:
    from .demo import seed_demo

    return seed_demo(crm, rng, customer_ids)
