"""``recrm tasks ...``: follow-up tasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from ..crm import CRM
from ..db import utcnow
from ..errors import InvalidInput
from ..models import Task
from ..reports.periods import check_period
from ..tasks import STATUSES, parse_due
from . import cli, current_actor, pass_crm
from .customers import bad_value, json_option
from .output import emit_json, info, local_time, table

task_arg = click.argument("task_id", type=click.IntRange(min=1, max=2**31 - 1), metavar="ID")
day_type = click.DateTime(formats=["%Y-%m-%d"])
F = TypeVar("F", bound=Callable[..., Any])


def show_tasks(crm: CRM, tasks: list[Task], as_json: bool) -> None:
    if as_json:
        emit_json(tasks)
        return
    zone = crm.config.zone
    table(None, ["id", "due", "status", "kind", "customer", "project", "staff", "note"],
          [(t.id, local_time(t.due_at, zone) + ("  OVERDUE" if t.overdue else ""), t.status,
            t.kind, t.customer_id, t.project, t.owner_staff, t.note or t.cancel_reason or "")
           for t in tasks])


def _done(crm: CRM, task: Task, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(task)
        return
    info(f"task {task.id} {verb}: {task.kind} customer {task.customer_id} at {task.project} "
         f"for {task.owner_staff}, due {local_time(task.due_at, crm.config.zone)}")


@cli.group()
def tasks() -> None:
    """Follow-up tasks: add, list, done, cancel; sweep (cron), report."""


@tasks.command("add")
@click.argument("customer_id", type=click.IntRange(min=1, max=2**31 - 1), metavar="CUSTOMER")
@click.option("--project", required=True, metavar="CODE",
              help="The project the follow-up is for.")
@click.option("--kind", required=True, help="call, visit, wechat, sms, email, ...")
@click.option("--due", required=True, metavar="TIME",
              help="When it is due: 2026-05-01 18:00 (business time zone), 2026-05-01 (end "
              "of that day), +3h, +2d.")
@click.option("--staff", metavar="STAFF", help="The owner (default: you).")
@click.option("--note", help="What to do or say.")
@json_option
@pass_crm
def add_cmd(crm: CRM, customer_id: int, project: str, kind: str, due: str,
            staff: str | None, note: str | None, as_json: bool) -> None:
    """Add a follow-up task for a customer at a project."""
    try:
        due_at = parse_due(due, crm.config.zone, utcnow())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--due") from None
    try:
        task = crm.tasks.add({"customer_id": customer_id, "project": project, "kind": kind,
                              "due_at": due_at, "staff": staff, "note": note},
                             actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc, {"due_at": "--due", "customer_id": "CUSTOMER"}) from None
    _done(crm, task, as_json, "added")


@tasks.command("list")
@click.option("--staff", metavar="STAFF", help="Only this owner's.")
@click.option("--overdue", is_flag=True, help="Only open tasks past their due time.")
@click.option("--due-today", is_flag=True, help="Only those due today (business time zone).")
@click.option("--status", type=click.Choice([*STATUSES, "all"], case_sensitive=False),
              default="open", show_default=True, metavar="STATUS",
              help="Only tasks in this status: " + ", ".join(STATUSES) + " or all.")
@click.option("--customer", "customer_id", type=click.IntRange(min=1, max=2**31 - 1),
              metavar="ID", help="Only this customer's tasks.")
@click.option("--project", metavar="CODE", help="Only tasks at this project.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="At most N tasks (default: all).")
@json_option
@pass_crm
def list_cmd(crm: CRM, staff: str | None, overdue: bool, due_today: bool, status: str,
             customer_id: int | None, project: str | None, limit: int | None,
             as_json: bool) -> None:
    """Tasks, earliest due first (a consultant sees their own)."""
    try:
        found = crm.tasks.list(staff=staff, overdue=overdue, due_today=due_today,
                               status=None if status == "all" else status.lower(),
                               customer_id=customer_id, project=project, limit=limit,
                               actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc) from None
    show_tasks(crm, found, as_json)


@tasks.command("done")
@task_arg
@click.option("--interaction", "interaction_id", type=click.IntRange(min=1, max=2**31 - 1),
              metavar="ID", help="The customer's interaction that did it.")
@json_option
@pass_crm
def done_cmd(crm: CRM, task_id: int, interaction_id: int | None, as_json: bool) -> None:
    """Mark an open task done (refused, exit 1, if it is not open)."""
    _done(crm, crm.tasks.done(task_id, interaction_id, actor=current_actor()), as_json, "done")


@tasks.command("cancel")
@task_arg
@click.option("--reason", required=True, help="Why it is not done.")
@json_option
@pass_crm
def cancel_cmd(crm: CRM, task_id: int, reason: str, as_json: bool) -> None:
    """Cancel an open task, saying why (refused, exit 1, if it is not open)."""
    try:
        task = crm.tasks.cancel(task_id, reason, actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc) from None
    _done(crm, task, as_json, "cancelled")


@tasks.command("sweep")
@json_option
@pass_crm
def sweep_cmd(crm: CRM, as_json: bool) -> None:
    """Create the follow-up rules' tasks that are due (for cron; running it twice
    creates nothing twice)."""
    result = crm.tasks.sweep(actor=current_actor())
    if as_json:
        emit_json(result)
    else:
        info(f"created {result.after_visit} call(s) after a first visit, "
             f"{result.prospect_idle} for quiet prospects")


def report_period(start: dt.datetime | None, end: dt.datetime | None
            ) -> tuple[dt.date | None, dt.date | None]:
    days = (start.date() if start else None, end.date() if end else None)
    try:
        check_period(*days)
    except InvalidInput as exc:
        raise bad_value(exc) from None
    return days


def report_options(f: F) -> F:
    """``--from DAY --to DAY`` (both optional, ``--to`` included) and ``--json``."""
    for option in (json_option,
                   click.option("--to", "end", type=day_type,
                                help="Last day (YYYY-MM-DD), included."),
                   click.option("--from", "start", type=day_type,
                                help="First day (YYYY-MM-DD).")):
        f = option(f)
    return f


def show_report(report: Callable[[], Sequence[BaseModel]], as_json: bool, columns: list[str],
                cells: Callable[[Any], Sequence[object]]) -> None:
    """Run ``report`` (a day no database keeps is a usage error) and show its rows."""
    try:
        rows = report()
    except InvalidInput as exc:
        raise bad_value(exc, {"from": "--from", "to": "--to"}) from None
    if as_json:
        emit_json(rows)
    else:
        table(None, columns, [cells(r) for r in rows])


@tasks.command("report")
@report_options
@pass_crm
def report_cmd(crm: CRM, start: dt.datetime | None, end: dt.datetime | None,
               as_json: bool) -> None:
    """Per consultant, the tasks created in the period: done on time, overdue."""
    first, last = report_period(start, end)
    show_report(lambda: crm.tasks.report(first, last, actor=current_actor()), as_json,
                ["staff", "created", "done on time", "overdue", "open", "cancelled"],
                lambda r: (r.staff, r.created, r.done_on_time, r.overdue, r.open, r.cancelled))
