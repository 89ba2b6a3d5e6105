"""The plugin's hook implementations (re-exported by the package, which is the plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recrm_core import hookimpl

from .settings import NAME, NewsletterSettings

if TYPE_CHECKING:  # annotations only: the models are imported by what uses them
    import datetime as dt

    import click

    from recrm_core import CRM, Customer, DeliveryResult, ErasureStep, Message, UnitOfWork
    from recrm_core.api import ApiRoutes


@hookimpl
def recrm_register_settings(register: Any) -> None:
    register(NAME, NewsletterSettings)


@hookimpl
def recrm_declare_tables() -> None:
    # The package imports its tables only when the core needs them (docs/plugins.md).
    from . import tables  # noqa: F401


@hookimpl
def recrm_consent_purposes(register: Any) -> None:
    # The owners' magazine has its own consent; campaigns use the core's marketing.
    register(NAME, "业主刊物")


@hookimpl
def recrm_deliver_message(crm: CRM, message: Message) -> DeliveryResult | None:
    # SMTP, files, the HTTP SMS provider; None leaves the message to the console.
    from .transports import deliver

    return deliver(crm, message)


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
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    from .privacy import merged_in

    merged_in(uow, survivor.id, duplicate_id)


@hookimpl
def recrm_reports(register: Any) -> None:
    # newsletter.sends: `campaign status` for every send started in the period;
    # imported here, so start-up does not load it
    from .reports import SPEC

    register(SPEC)


@hookimpl
def recrm_register_commands(cli: click.Group) -> None:
    from .cli import newsletter_group

    cli.add_command(newsletter_group)


@hookimpl
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    # The SMS provider's reply callback: imported here, so no command pays for FastAPI.
    from .api import add_routes

    add_routes(crm, routes)


@hookimpl
def recrm_demo(crm: CRM, rng: Any, customer_ids: list[int], anchor: dt.datetime) -> Any:
    from .demo import seed_demo

    return seed_demo(crm, rng, customer_ids, anchor)
