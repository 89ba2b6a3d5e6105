"""``recrm audit ...``: read and prune the audit log (admins only)."""

from __future__ import annotations

import datetime as dt

import click

from ..access import require_role
from ..crm import CRM
from ..db import MAX_ID
from ..values import check_day, parse_date
from . import cli, current_actor, pass_crm
from .customers import json_option
from .output import emit_json, info, local_time, table

#: who reads the processing record
AUDITORS = ("admin",)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        day = parse_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if day is None:
        raise click.BadParameter("is empty", param_hint=option)
    try:
        return check_day(day)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@cli.group()
def audit() -> None:
    """The audit log: list, prune."""


@audit.command("list")
@click.option("--customer", "customer_id", type=click.IntRange(min=1, max=MAX_ID),
              help="Only entries about this customer.")
@click.option("--actor", "actor_staff", metavar="STAFF", help="Only this staff id's entries.")
@click.option("--action", help="Only this action (disclose, export, merge, ...).")
@click.option("--from", "since", metavar="DATE", help="From this day (inclusive).")
@click.option("--to", "until", metavar="DATE", help="To this day (inclusive).")
@click.option("--limit", type=click.IntRange(min=1, max=MAX_ID),
              help="At most this many (the oldest).")
@json_option
@pass_crm
def list_cmd(crm: CRM, customer_id: int | None, actor_staff: str | None, action: str | None,
             since: str | None, until: str | None, limit: int | None, as_json: bool) -> None:
    """Audit entries, oldest first (days in the business time zone)."""
    require_role(current_actor(), AUDITORS, "read the audit log")
    zone = crm.config.zone
    first, last = _date(since, "--from"), _date(until, "--to")
    if first and last and first > last:
        raise click.BadParameter("is after --to", param_hint="--from")
    if action is not None and action not in crm.audit.actions():
        raise click.BadParameter(
            f"unknown action {action!r}; actions: {', '.join(sorted(crm.audit.actions()))}",
            param_hint="--action")
    entries = crm.audit.entries(
        customer_id=customer_id, actor_staff=actor_staff, action=action,
        since=dt.datetime.combine(first, dt.time(), zone) if first else None,
        until=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
        if last else None,
        limit=limit,
    )
    if as_json:
        emit_json(entries)
        return
    table(None, ["id", "when", "actor", "role", "action", "customer", "via", "reason",
                 "details"],
          [(e.id, local_time(e.at, zone), e.actor_staff, e.actor_role, e.action,
            e.customer_id, e.channel, e.reason,
            ", ".join(f"{k}={v}" for k, v in e.details.items())) for e in entries])


@audit.command("prune")
@click.option("--before", required=True, metavar="DATE",
              help="Delete entries older than this day; refused unless it is at least the "
              "retention (audit_retention_years, 3) ago.")
@json_option
@pass_crm
def prune_cmd(crm: CRM, before: str, as_json: bool) -> None:
    """Delete audit entries past retention (the pruning itself is recorded)."""
    actor = current_actor()
    require_role(actor, AUDITORS, "prune the audit log")
    day = _date(before, "--before")
    assert day is not None
    deleted = crm.audit.prune(day, actor=actor)
    if as_json:
        emit_json({"deleted": deleted})
    else:
        info(f"deleted {deleted} audit entries older than {day.isoformat()}")
