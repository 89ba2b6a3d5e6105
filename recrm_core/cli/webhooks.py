"""``recrm webhook ...``: subscriptions, their deliveries and the sender (admin)."""

from __future__ import annotations

import click

from ..crm import CRM
from ..db import MAX_ID
from ..errors import InvalidInput
from . import cli, current_actor, pass_crm
from .customers import bad_value, json_option
from .output import emit_json, info, local_time, table

_OPTIONS = {"url": "URL", "events": "--events", "secret": "--secret",
            "description": "--description", "status": "--status"}


@cli.group()
def webhook() -> None:
    """Webhooks: add, list, remove, events, deliveries (admin); deliver (cron)."""


@webhook.command("add")
@click.argument("url")
@click.option("--events", required=True, metavar="TYPE,...",
              help="Event types, comma-separated (recrm webhook events lists them; * for all).")
@click.option("--secret", help="The signing secret (16-100 characters); default: a new "
              "one, printed once.")
@click.option("--description", help="What it is for, e.g. 'ERP sync'.")
@json_option
@pass_crm
def add_cmd(crm: CRM, url: str, events: str, secret: str | None, description: str | None,
            as_json: bool) -> None:
    """Send events of the given types to URL, signed with a secret."""
    try:
        created = crm.webhooks.add(url, events, secret=secret, description=description,
                                   actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc, _OPTIONS) from None
    if as_json:
        data = created.model_dump(mode="json")
        if not created.generated:
            data.pop("secret")  # the caller has it; it is not printed again
        emit_json(data)
        return
    info(f"webhook {created.id} added: {created.url} ({', '.join(created.events)})")
    if created.generated:
        info("its signing secret is shown once, keep it now:")
        click.echo(created.secret)


@webhook.command("list")
@json_option
@pass_crm
def list_cmd(crm: CRM, as_json: bool) -> None:
    """Every webhook, without secrets."""
    hooks = crm.webhooks.list(actor=current_actor())
    if as_json:
        emit_json(hooks)
        return
    zone = crm.config.zone
    table("Webhooks", ["id", "url", "events", "description", "created"],
          [(h.id, h.url, ", ".join(h.events), h.description or "",
            local_time(h.created_at, zone)) for h in hooks])


@webhook.command("remove")
@click.argument("webhook_id", metavar="ID", type=click.IntRange(1, MAX_ID))
@json_option
@pass_crm
def remove_cmd(crm: CRM, webhook_id: int, as_json: bool) -> None:
    """Remove a webhook; its pending deliveries are not sent."""
    gone = crm.webhooks.remove(webhook_id, actor=current_actor())
    if as_json:
        emit_json(gone)
    else:
        info(f"removed webhook {gone.id} ({gone.url})")


@webhook.command("events")
@json_option
@pass_crm
def events_cmd(crm: CRM, as_json: bool) -> None:
    """The event types webhooks may receive (the core's and the plugins')."""
    types = crm.webhooks.event_types()
    if as_json:
        emit_json(types)
        return
    table("Webhook events", ["type", "source", "sent when"],
          [(t.name, t.source, t.description) for t in types])


@webhook.command("deliveries")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]),
              metavar="STATE", help="Only deliveries in this state: pending, delivered or "
                                    "failed.")
@click.option("--webhook", "webhook_id", type=click.IntRange(1, MAX_ID), metavar="ID",
              help="Only this webhook's.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="At most this many deliveries, the newest.")
@json_option
@pass_crm
def deliveries_cmd(crm: CRM, status: str | None, webhook_id: int | None, limit: int,
                   as_json: bool) -> None:
    """Deliveries, newest first: pending, delivered and failed (kept until retention)."""
    found = crm.webhooks.deliveries(actor=current_actor(), status=status,
                                    webhook_id=webhook_id, limit=limit)
    if as_json:
        emit_json(found)
        return
    zone = crm.config.zone
    table("Webhook deliveries",
          ["id", "event", "type", "webhook", "status", "attempts", "last answer",
           "next attempt", "finished"],
          [(d.id, d.event_id, d.type, d.subscription_id, d.status, d.attempts,
            d.last_error or (str(d.last_status) if d.last_status else ""),
            local_time(d.next_attempt_at, zone), local_time(d.finished_at, zone))
           for d in found])


@webhook.command("deliver")
@click.option("--loop", is_flag=True, help="Keep running, a pass every --interval seconds "
              "(stop with Ctrl-C); without it: one pass, for cron.")
@click.option("--interval", type=click.FloatRange(0.1, 86_400), default=10.0,
              show_default=True, help="Seconds between passes with --loop.")
@json_option
@pass_crm
def deliver_cmd(crm: CRM, loop: bool, interval: float, as_json: bool) -> None:
    """Send the events due (retries included), after deleting those past retention."""
    from ..webhooks.models import DeliveryRun

    def report(run: DeliveryRun) -> None:
        if as_json:
            emit_json(run)
        elif run.attempted or run.pruned or not loop:
            info(f"webhooks: {run.delivered} delivered, {run.retrying} to retry, "
                 f"{run.failed} failed, {run.pruned} pruned")

    if loop:
        crm.webhooks.run(interval, report=report)
    else:
        report(crm.webhooks.deliver())
