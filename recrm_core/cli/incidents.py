"""``recrm incidents ...``: one event behind many service cases."""

from __future__ import annotations

import click

from ..crm import CRM
from ..errors import InvalidInput
from ..incidents import Incident
from . import cli, current_actor, pass_crm
from .cases import show_cases
from .customers import actor_of, actor_option, json_option
from .output import emit_json, info, local_time, table


def _show(crm: CRM, incident: Incident, as_json: bool) -> None:
    if as_json:
        emit_json(incident)
        return
    zone = crm.config.zone
    table(f"incident {incident.id}", ["field", "value"], [
        ("title", incident.title), ("description", incident.description),
        ("project", incident.project), ("status", incident.status),
        ("owner", incident.owner), ("department", incident.department),
        ("opened", local_time(incident.opened_at, zone)),
        ("closed", local_time(incident.closed_at, zone)), ("resolution", incident.resolution),
        ("cases", len(incident.cases)),
    ])
    if incident.cases:
        show_cases(crm, incident.cases, False)


@cli.group()
def incidents() -> None:
    """Incidents behind many cases: open, link, show, list, close."""


@incidents.command("open")
@click.option("--title", required=True,
              help="What happened, one line (at most 200 characters).")
@click.option("--description", help="Free text: where, since when, what is being done.")
@click.option("--project", metavar="CODE", help="The project it concerns.")
@click.option("--owner", help="Staff id in charge.")
@click.option("--department", help="Department in charge.")
@actor_option
@json_option
@pass_crm
def open_cmd(crm: CRM, title: str, description: str | None, project: str | None,
             owner: str | None, department: str | None, actor: str | None,
             as_json: bool) -> None:
    """Open an incident (a leaking building, a delayed handover)."""
    data = {"title": title, "description": description, "project": project, "owner": owner,
            "department": department}
    try:
        found = crm.incidents.open({k: v for k, v in data.items() if v is not None},
                                   actor=actor_of(actor))
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None
    emit_json(found) if as_json else info(f"incident {found.id} opened: {found.title}")


@incidents.command("link")
@click.argument("incident_id", type=int)
@click.argument("case_ids", type=int, nargs=-1, required=True)
@click.option("--note", help="Why (kept in each case's history).")
@actor_option
@json_option
@pass_crm
def link(crm: CRM, incident_id: int, case_ids: tuple[int, ...], note: str | None,
         actor: str | None, as_json: bool) -> None:
    """Link cases to an open incident."""
    found = crm.incidents.link(incident_id, case_ids, note=note, actor=actor_of(actor))
    emit_json(found) if as_json else info(
        f"incident {found.id}: {len(found.cases)} cases linked")


@incidents.command("show")
@click.argument("incident_id", type=int)
@json_option
@pass_crm
def show(crm: CRM, incident_id: int, as_json: bool) -> None:
    """An incident with its cases."""
    _show(crm, crm.incidents.get(incident_id, actor=current_actor()), as_json)


@incidents.command("list")
@click.option("--status", type=click.Choice(["open", "closed"]),
              help="Only incidents in this status (default: both).")
@json_option
@pass_crm
def list_cmd(crm: CRM, status: str | None, as_json: bool) -> None:
    """Incidents, newest first, with their case counts."""
    found = crm.incidents.list(status=status, actor=current_actor())
    if as_json:
        emit_json(found)
        return
    counts = crm.incidents.counts()
    zone = crm.config.zone
    table("incidents", ["id", "status", "title", "project", "owner", "cases", "opened"],
          [(i.id, i.status, i.title, i.project, i.owner, counts.get(i.id, 0),
            local_time(i.opened_at, zone)) for i in found])


@incidents.command("close")
@click.argument("incident_id", type=int)
@click.option("--resolve-cases", is_flag=True, help="Resolve its open cases together.")
@click.option("--note", help="The resolution (kept with the incident and each case).")
@actor_option
@json_option
@pass_crm
def close(crm: CRM, incident_id: int, resolve_cases: bool, note: str | None,
          actor: str | None, as_json: bool) -> None:
    """Close an incident (and, with --resolve-cases, resolve its open cases)."""
    found = crm.incidents.close(incident_id, resolve_cases=resolve_cases, note=note,
                                actor=actor_of(actor))
    resolved = sum(1 for c in found.cases if c.status == "resolved")
    emit_json(found) if as_json else info(
        f"incident {found.id} closed; {resolved} of its {len(found.cases)} cases resolved")
