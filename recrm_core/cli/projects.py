"""``recrm projects ...``: the registry of project codes."""

from __future__ import annotations

import click

from ..crm import CRM
from ..errors import InvalidInput
from . import cli, pass_crm
from .customers import actor_of, actor_option, bad_value, json_option
from .output import emit_json, info, table


@cli.group()
def projects() -> None:
    """Projects (楼盘): add, list, rename."""


@projects.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The name people know the project by.")
@click.option("--city", help="The city it is in (free text, at most 64 characters).")
@click.option("--service-department", help="The department serving its owners.")
@actor_option
@json_option
@pass_crm
def add(crm: CRM, code: str, name: str, city: str | None, service_department: str | None,
        actor: str | None, as_json: bool) -> None:
    """Register project CODE (refused, exit 1, if it exists)."""
    try:
        project = crm.projects.add(
            {"code": code, "name": name, "city": city, "service_department": service_department},
            actor=actor_of(actor),
        )
    except InvalidInput as exc:
        raise bad_value(exc, {"code": "CODE", "project": "CODE"}) from None
    if as_json:
        emit_json(project)
    else:
        info(f"added project {project.code} ({project.name})")


@projects.command("list")
@json_option
@pass_crm
def list_cmd(crm: CRM, as_json: bool) -> None:
    """Every project, by code."""
    found = crm.projects.list()
    if as_json:
        emit_json(found)
        return
    table(None, ["code", "name", "city", "service department"],
          [(p.code, p.name, p.city, p.service_department) for p in found])


@projects.command("rename")
@click.argument("old")
@click.argument("new")
@actor_option
@json_option
@pass_crm
def rename(crm: CRM, old: str, new: str, actor: str | None, as_json: bool) -> None:
    """Give project OLD the code NEW; every customer, interaction and case stays with it."""
    try:
        project = crm.projects.rename(old, new, actor=actor_of(actor))
    except InvalidInput as exc:
        raise click.BadParameter(exc.reason) from None
    if as_json:
        emit_json(project)
    else:
        info(f"renamed project {old.strip()} to {project.code}")
