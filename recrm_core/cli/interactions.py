"""``recrm interactions ...``"""

from __future__ import annotations

import click

from ..crm import CRM
from ..errors import InvalidInput
from ..values import MAX_MINUTES
from . import cli, current_actor, pass_crm
from .customers import actor_of, bad_value, json_option
from .output import emit_json, info, local_time, table


@cli.group()
def interactions() -> None:
    """The interaction timeline."""


@interactions.command("log")
@click.argument("customer_id", type=int)
@click.option("--kind", required=True, help="call, visit, sms, wechat, email, event, ...")
@click.option("--channel", help="How it happened, when --kind does not say (phone, app, ...).")
@click.option("--project", metavar="CODE", help="Project code it belongs to.")
@click.option("--staff", help="Staff id of who made the contact (also who logs it).")
@click.option("--summary", help="Free text: what was said or agreed.")
@click.option("--minutes", type=click.IntRange(0, MAX_MINUTES),
              help="How long the contact took (the staff report's contact hours).")
@json_option
@pass_crm
def log(crm: CRM, customer_id: int, kind: str, channel: str | None, project: str | None,
        staff: str | None, summary: str | None, minutes: int | None, as_json: bool) -> None:
    """Append an interaction to a customer's timeline."""
    try:
        interaction = crm.interactions.log(
            customer_id,
            {"kind": kind, "channel": channel, "project": project, "staff": staff,
             "summary": summary, "minutes": minutes},
            actor=actor_of(staff, "--staff"),
        )
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(interaction)
    else:
        info(f"logged {interaction.kind} #{interaction.id} for customer {interaction.customer_id}")


@interactions.command("list")
@click.argument("customer_id", type=int)
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Only the N newest (default: all).")
@click.option("--project", help="Only those at this project.")
@json_option
@pass_crm
def list_cmd(crm: CRM, customer_id: int, limit: int | None, project: str | None,
             as_json: bool) -> None:
    """A customer's interactions, newest first."""
    try:
        items = crm.interactions.list(customer_id, limit, current_actor(), project=project)
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(items)
        return
    zone = crm.config.zone
    table(None, ["id", "when", "kind", "project", "staff", "summary"],
          [(i.id, local_time(i.occurred_at, zone), i.kind, i.project, i.staff, i.summary)
           for i in items])
