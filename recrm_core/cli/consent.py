"""``recrm consent ...``"""

from __future__ import annotations

import click

from ..consent import CHANNELS
from ..crm import CRM
from ..errors import InvalidInput
from . import cli, current_actor, pass_crm
from .customers import actor_of, actor_option, bad_value, json_option
from .output import emit_json, info, local_time, table

channel_arg = click.argument("channel", type=click.Choice(CHANNELS))
# Not a fixed choice: plugins register purposes (recrm_consent_purposes); the service
# checks the name against the CRM's registry (a bad one exits 2 naming the known ones).
purpose_opt = click.option("--purpose", default="marketing", show_default=True,
                           help="marketing, surveys, or a purpose an enabled plugin adds")
source_opt = click.option("--source", help="Where the consent was given (form, call, ...).")


@cli.group()
def consent() -> None:
    """Consent by channel and purpose; the newest record decides."""


@consent.command("grant")
@click.argument("customer_id", type=int)
@channel_arg
@purpose_opt
@source_opt
@actor_option
@json_option
@pass_crm
def grant(crm: CRM, customer_id: int, channel: str, purpose: str, source: str | None,
          actor: str | None, as_json: bool) -> None:
    """Record that the customer opted in."""
    try:
        record = crm.consent.grant(customer_id, channel, purpose, source, actor_of(actor))
    except InvalidInput as exc:
        raise bad_value(exc) from None
    emit_json(record) if as_json else info(f"granted {channel}/{purpose} for {customer_id}")


@consent.command("withdraw")
@click.argument("customer_id", type=int)
@channel_arg
@purpose_opt
@source_opt
@actor_option
@json_option
@pass_crm
def withdraw(crm: CRM, customer_id: int, channel: str, purpose: str, source: str | None,
             actor: str | None, as_json: bool) -> None:
    """Record that the customer opted out."""
    try:
        record = crm.consent.withdraw(customer_id, channel, purpose, source, actor_of(actor))
    except InvalidInput as exc:
        raise bad_value(exc) from None
    emit_json(record) if as_json else info(f"withdrew {channel}/{purpose} for {customer_id}")


@consent.command("show")
@click.argument("customer_id", type=int)
@json_option
@pass_crm
def show(crm: CRM, customer_id: int, as_json: bool) -> None:
    """The deciding consent per channel and purpose."""
    records = crm.consent.current(customer_id, actor=current_actor())
    if as_json:
        emit_json(records)
        return
    table(None, ["channel", "purpose", "granted", "source", "since"],
          [(r.channel, r.purpose, "yes" if r.granted else "no", r.source,
            local_time(r.recorded_at, crm.config.zone)) for r in records])
