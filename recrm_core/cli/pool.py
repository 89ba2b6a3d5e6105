"""``recrm pool ...``: the public pool (公海)."""

from __future__ import annotations

import datetime as dt

import click

from ..crm import CRM
from ..errors import InvalidInput
from . import cli, current_actor, pass_crm
from .customers import bad_value, json_option
from .output import emit_json, info, local_time, table
from .tasks import report_options, report_period, show_report


@cli.group()
def pool() -> None:
    """The public pool (公海): sweep (cron), list, claim, history, report."""


@pool.command("sweep")
@click.option("--dry-run", is_flag=True, help="Show what would be released; change nothing.")
@json_option
@pass_crm
def sweep_cmd(crm: CRM, dry_run: bool, as_json: bool) -> None:
    """Release to the pool every customer whose owner has not followed up within
    pool.idle_days (for cron; running it twice releases nothing twice)."""
    result = crm.pool.sweep(dry_run=dry_run, actor=current_actor())
    if as_json:
        emit_json(result)
        return
    zone = crm.config.zone
    if result.released:
        table("would release" if dry_run else "released",
              ["customer", "project", "from", "idle since"],
              [(r.customer_id, r.project, r.owner, local_time(r.idle_since, zone))
               for r in result.released])
    info(f"{'would release' if dry_run else 'released'} {len(result.released)} "
         "customer-project link(s)")


@pool.command("list")
@click.option("--project", required=True, metavar="CODE", help="The project whose pool to list.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Only the N longest in the pool (default: all).")
@json_option
@pass_crm
def list_cmd(crm: CRM, project: str, limit: int | None, as_json: bool) -> None:
    """A project's pool: its customers without an owner, longest there first."""
    try:
        entries = crm.pool.list(project, limit=limit, actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(entries)
        return
    zone = crm.config.zone
    table(None, ["customer", "stage", "in pool since", "released from", "reason"],
          [(e.customer_id, e.stage, local_time(e.pooled_at or e.first_seen_at, zone),
            e.released_from, e.reason) for e in entries])


@pool.command("claim")
@click.argument("customer_id", type=click.IntRange(min=1, max=2**31 - 1), metavar="CUSTOMER")
@click.option("--project", required=True, metavar="CODE",
              help="The project whose pool the customer is in.")
@click.option("--staff", metavar="STAFF", help="Who claims (default: you).")
@json_option
@pass_crm
def claim_cmd(crm: CRM, customer_id: int, project: str, staff: str | None,
              as_json: bool) -> None:
    """Take a customer from the project's pool (refused, exit 1, when someone has it)."""
    try:
        event = crm.pool.claim(customer_id, project, staff, actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(event)
    else:
        info(f"{event.staff} now owns customer {event.customer_id} at {event.project}")


@pool.command("history")
@click.argument("customer_id", type=click.IntRange(min=1, max=2**31 - 1), metavar="CUSTOMER")
@json_option
@pass_crm
def history_cmd(crm: CRM, customer_id: int, as_json: bool) -> None:
    """A customer's releases and claims, oldest first."""
    events = crm.pool.history(customer_id, actor=current_actor())
    if as_json:
        emit_json(events)
        return
    zone = crm.config.zone
    table(None, ["at", "project", "action", "staff", "reason", "by"],
          [(local_time(e.at, zone), e.project, e.action, e.staff, e.reason, e.actor_staff)
           for e in events])


@pool.command("report")
@report_options
@pass_crm
def report_cmd(crm: CRM, start: dt.datetime | None, end: dt.datetime | None,
               as_json: bool) -> None:
    """Per project: released, claimed, median days in the pool, in the pool now."""
    first, last = report_period(start, end)
    show_report(lambda: crm.pool.report(first, last, actor=current_actor()), as_json,
                ["project", "released", "claimed", "median days in pool", "in pool now"],
                lambda r: (r.project, r.released, r.claimed,
                           "" if r.median_days_in_pool is None else r.median_days_in_pool,
                           r.in_pool))
