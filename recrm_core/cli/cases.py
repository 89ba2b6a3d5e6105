"""``recrm cases ...``: service cases with SLAs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import click
from rich import box
from rich.table import Table

from ..cases import PRIORITIES, STATUSES
from ..crm import CRM
from ..errors import InvalidInput
from ..models import Actor, Case, IntakeChannel
from . import cli, current_actor, pass_crm
from .customers import actor_of, actor_option, json_option
from .output import cell, console, emit_json, info, local_time, table

note_option = click.option("--note", help="Why (kept in the case history).")
case_arg = click.argument("case_id", type=int)


def show_cases(crm: CRM, cases: list[Case], as_json: bool) -> None:
    if as_json:
        emit_json(cases)
        return
    zone = crm.config.zone
    # A work queue that fits an 80-column terminal: no vertical rules, where the case
    # stands first, and what it is about folded under its subject.
    t = Table(box=box.SIMPLE_HEAD)
    for name in ("id", "status", "priority", "SLA due"):
        t.add_column(name, no_wrap=True)
    t.add_column("with", overflow="fold")
    t.add_column("subject", overflow="fold")
    for c in cases:
        about = " · ".join(x for x in (c.category, c.project, f"customer {c.customer_id}",
                                       f"via {c.channel}") if x)
        t.add_row(
            str(c.id),
            c.status + ("\nOVERDUE" if c.overdue else ""),
            c.priority + (f" +{c.escalation_level}" if c.escalation_level else ""),
            local_time(c.sla_due_at, zone),
            cell(f"{c.department or '-'}/{c.assignee or '-'}"),
            cell(f"{c.subject}\n{about}"),
        )
    console().print(t)


def show_case(crm: CRM, case: Case, as_json: bool) -> None:
    """One case with its history, times in the business time zone."""
    if as_json:
        emit_json(case)
        return
    zone = crm.config.zone
    fields: list[tuple[str, Any]] = [
        ("customer", case.customer_id),
        ("project", case.project),
        ("category", case.category),
        ("priority", case.priority),
        ("status", case.status),
        ("subject", case.subject),
        ("description", case.description),
        ("department", case.department),
        ("assignee", case.assignee),
        ("level", f"{case.escalation_level}: {case.level}" if case.level
         else case.escalation_level),
        ("intake channel", case.channel),
        ("incident", case.incident_id),
        ("opened", local_time(case.opened_at, zone)),
        ("SLA due", local_time(case.sla_due_at, zone) + ("  OVERDUE" if case.overdue else "")),
        ("resolved", local_time(case.resolved_at, zone)),
        ("closed", local_time(case.closed_at, zone)),
    ]
    table(f"case {case.id}", ["field", "value"], fields)
    table(
        "history",
        ["at", "action", "from", "to", "by", "note"],
        [
            (local_time(h.at, zone), h.action, h.from_value, h.to_value,
             f"{h.actor_staff} ({h.actor_role})" if h.actor_staff else None, h.note)
            for h in case.history
        ],
    )


def _done(crm: CRM, case: Case, as_json: bool, verb: str) -> None:
    if as_json:
        # What a write returns is read as any read: no free text for partners, analysts.
        emit_json(crm.access.case_for(current_actor(), case))
        return
    info(f"case {case.id} {verb}: {case.status}, due "
         f"{local_time(case.sla_due_at, crm.config.zone)}")


@cli.group()
def cases() -> None:
    """Service cases: open, route, transfer, escalate, sweep, resolve, ..."""


@cases.command("open")
@click.argument("customer_id", type=int)
@click.option("--category", required=True, help="complaint, repair, inquiry, ...")
@click.option("--subject", required=True, help="What it is about, one line (at most 200 "
                                               "characters).")
@click.option("--priority", type=click.Choice(PRIORITIES, case_sensitive=False),
              default="normal", show_default=True, metavar="PRIORITY",
              help="low, normal, high or urgent: decides the SLA due time (the [sla] "
                   "policy).")
@click.option("--project", help="Project code (created if new).")
@click.option("--department", help="Department code handling it.")
@click.option("--assignee", help="Staff id (without one, the [[routing]] rules route it).")
@click.option("--description", help="Free text: what the customer said, what was seen.")
@click.option("--channel", type=click.Choice(get_args(IntakeChannel), case_sensitive=False),
              metavar="CHANNEL", help="How it came in: " + ", ".join(get_args(IntakeChannel))
              + " (default: other).")
@actor_option
@json_option
@pass_crm
def open_cmd(crm: CRM, customer_id: int, actor: str | None, as_json: bool,
             **fields: Any) -> None:
    """Open a case for a customer; its SLA due time follows the policy."""
    data = {k: v for k, v in fields.items() if v is not None}
    data["customer_id"] = customer_id
    try:
        case = crm.cases.open(data, actor=actor_of(actor))
    except InvalidInput as exc:
        # Everything validated here came from an option: a usage error.
        raise click.UsageError(str(exc)) from None
    _done(crm, case, as_json, "opened")


def _status_command(name: str, verb: str,
                    call: Callable[[CRM, int, str | None, Actor | None], Case]) -> None:
    @cases.command(name)
    @case_arg
    @note_option
    @actor_option
    @json_option
    @pass_crm
    def command(crm: CRM, case_id: int, note: str | None, actor: str | None,
                as_json: bool) -> None:
        _done(crm, call(crm, case_id, note, actor_of(actor)), as_json, verb)

    command.help = f"{verb.capitalize()} a case (refused, exit 1, from a status that forbids it)."


_status_command("start", "started",
                lambda crm, cid, note, actor: crm.cases.start(cid, actor=actor, note=note))
_status_command("resolve", "resolved",
                lambda crm, cid, note, actor: crm.cases.resolve(cid, note=note, actor=actor))
_status_command("close", "closed",
                lambda crm, cid, note, actor: crm.cases.close(cid, note=note, actor=actor))
_status_command("reopen", "reopened",
                lambda crm, cid, note, actor: crm.cases.reopen(cid, note=note, actor=actor))
_status_command("escalate", "escalated",
                lambda crm, cid, note, actor: crm.cases.escalate(cid, note=note, actor=actor))


@cases.command("route")
@case_arg
@actor_option
@json_option
@pass_crm
def route(crm: CRM, case_id: int, actor: str | None, as_json: bool) -> None:
    """Route a case again by the [[routing]] rules (refused, exit 1, when none matches)."""
    case = crm.cases.route(case_id, actor=actor_of(actor))
    _done(crm, case, as_json, f"routed to {case.department or '-'}/{case.assignee or '-'}")


@cases.command("sweep")
@actor_option
@json_option
@pass_crm
def sweep(crm: CRM, actor: str | None, as_json: bool) -> None:
    """Escalate overdue cases whose level's window has passed; notify the top level again
    after each window (for cron; running it again changes nothing)."""
    result = crm.cases.sweep(actor=actor_of(actor))
    if as_json:
        emit_json(result)
    else:
        info(f"checked {result['checked']} overdue cases: {result['escalated']} escalated, "
             f"{result['notified']} notified at the top level")


@cases.command("transfer")
@case_arg
@click.option("--department", help="Department to hand the case to.")
@click.option("--assignee", help="Staff id to hand the case to.")
@note_option
@actor_option
@json_option
@pass_crm
def transfer(crm: CRM, case_id: int, department: str | None, assignee: str | None,
             note: str | None, actor: str | None, as_json: bool) -> None:
    """Hand a case to another department and/or assignee (recorded in its history)."""
    if not (department or "").strip() and not (assignee or "").strip():
        raise click.UsageError("give --department or --assignee (or both)")
    try:
        case = crm.cases.transfer(case_id, department=department, assignee=assignee,
                                  note=note, actor=actor_of(actor))
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None
    _done(crm, case, as_json, f"transferred to {case.department or '-'}/{case.assignee or '-'}")


@cases.command("show")
@case_arg
@json_option
@pass_crm
def show(crm: CRM, case_id: int, as_json: bool) -> None:
    """A case with its history (times in the business time zone)."""
    show_case(crm, crm.cases.get(case_id, actor=current_actor()), as_json)


@cases.command("list")
@click.option("--status", type=click.Choice(STATUSES, case_sensitive=False),
              metavar="STATUS", help="Only cases in this status: " + ", ".join(STATUSES) + ".")
@click.option("--overdue", is_flag=True, help="Only active cases past their SLA due time.")
@click.option("--customer", "customer_id", type=int, metavar="ID",
              help="Only this customer's cases (a merged-away id finds the survivor's).")
@click.option("--project", metavar="CODE", help="Only cases of this project.")
@click.option("--assignee", metavar="STAFF", help="Only cases assigned to this staff id.")
@click.option("--department", metavar="CODE", help="Only cases of this department.")
@click.option("--channel", type=click.Choice(get_args(IntakeChannel), case_sensitive=False),
              metavar="CHANNEL", help="Only cases that came in this way: "
              + ", ".join(get_args(IntakeChannel)) + ".")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="At most N cases (default: all).")
@json_option
@pass_crm
def list_cmd(crm: CRM, as_json: bool, **filters: Any) -> None:
    """Cases matching the filters, earliest SLA due time first."""
    show_cases(crm, crm.cases.list(**filters, actor=current_actor()), as_json)
