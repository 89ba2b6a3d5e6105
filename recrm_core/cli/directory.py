"""``recrm staff ...`` and ``recrm departments ...``: the directory."""

from __future__ import annotations

import click

from ..access import require_role
from ..crm import CRM
from ..errors import InvalidInput
from ..models import Staff
from . import cli, current_actor, pass_crm
from .customers import bad_value, json_option
from .output import emit_json, info, local_time, table

#: who keeps the directory
DIRECTORY_KEEPERS = ("admin",)


@cli.group()
def staff() -> None:
    """The staff directory: add, list, leave."""


@staff.command("add")
@click.argument("staff_id", metavar="ID")
@click.option("--name", required=True, help="Their full name.")
@click.option("--role", required=True,
              help="admin, manager, sales, service, partner or analyst.")
@click.option("--department", metavar="CODE", help="The department they work in.")
@click.option("--manager", metavar="ID", help="Their manager's staff id.")
@click.option("--email", help="Work email, for notifications.")
@click.option("--mobile", help="Work mobile, for notifications.")
@json_option
@pass_crm
def add_cmd(crm: CRM, staff_id: str, name: str, role: str, department: str | None,
            manager: str | None, email: str | None, mobile: str | None,
            as_json: bool) -> None:
    """Add a member of staff (refused, exit 1, if the id exists)."""
    require_role(current_actor(), DIRECTORY_KEEPERS, "change the staff directory")
    try:
        added = crm.directory.add_staff({
            "id": staff_id, "name": name, "role": role, "department": department,
            "manager": manager, "email": email, "mobile": mobile})
    except InvalidInput as exc:
        raise bad_value(exc, {"id": "ID"}) from None
    if as_json:
        emit_json(added)
    else:
        info(f"added staff {added.id} ({added.role})")


@staff.command("list")
@click.option("--department", help="Only this department.")
@click.option("--unknown", is_flag=True,
              help="Instead: the staff ids in use (owners, assignees, actors) the directory "
              "lacks.")
@json_option
@pass_crm
def list_cmd(crm: CRM, department: str | None, unknown: bool, as_json: bool) -> None:
    """Everyone in the directory, those who left too."""
    require_role(current_actor(), ("admin", "manager", "sales", "service", "analyst"),
                 "list the staff directory")
    if unknown:
        if department is not None:
            raise click.UsageError("--unknown lists ids the directory lacks: no --department")
        ids = crm.directory.unknown_ids()
        if as_json:
            emit_json(ids)
        else:
            table("staff ids not in the directory", ["id"], [(i,) for i in ids])
        return
    people = crm.directory.staff(department)
    if as_json:
        emit_json(people)
        return
    _staff_table(crm, people)


def _staff_table(crm: CRM, people: list[Staff]) -> None:
    zone = crm.config.zone
    table(None, ["id", "name", "role", "department", "manager", "email", "mobile", "left"],
          [(p.id, p.name, p.role, p.department, p.manager, p.email, p.mobile,
            local_time(p.left_at, zone)) for p in people])


@staff.command("leave")
@click.argument("staff_id", metavar="ID")
@click.option("--reassign-to", metavar="STAFF", help="Move all their customers to this "
              "colleague.")
@click.option("--to-pool", is_flag=True, help="Release all their customers to the public pool.")
@json_option
@pass_crm
def leave_cmd(crm: CRM, staff_id: str, reassign_to: str | None, to_pool: bool,
              as_json: bool) -> None:
    """Mark a member of staff as gone: history keeps them, new assignments are refused;
    their customers go to --reassign-to or, with --to-pool, to the public pool."""
    if reassign_to is not None and to_pool:
        raise click.UsageError("give --reassign-to or --to-pool, not both")
    require_role(current_actor(), DIRECTORY_KEEPERS, "change the staff directory")
    if reassign_to is None and not to_pool:
        owned = crm.directory.owned_links(staff_id)
        if owned:
            # Their customers must go somewhere: nobody follows up a departed owner's.
            raise click.UsageError(f"{staff_id} owns {owned} customer links: give "
                                   "--reassign-to STAFF or --to-pool")
    try:
        gone = crm.directory.leave(staff_id, reassign_to=reassign_to, to_pool=to_pool)
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(gone)
    else:
        info(f"staff {gone.id} left; they take no new assignments")


@cli.group()
def departments() -> None:
    """Departments and the projects they serve: add, list."""


@departments.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The department's name.")
@click.option("--projects", metavar="P1,P2", help="Codes of the projects it serves.")
@click.option("--email", help="A shared mailbox, for notifications.")
@json_option
@pass_crm
def departments_add(crm: CRM, code: str, name: str, projects: str | None, email: str | None,
                    as_json: bool) -> None:
    """Add a department (refused, exit 1, if the code exists)."""
    require_role(current_actor(), DIRECTORY_KEEPERS, "change the staff directory")
    codes = [p.strip() for p in (projects or "").split(",") if p.strip()]
    try:
        added = crm.directory.add_department(
            {"code": code, "name": name, "email": email, "projects": codes})
    except InvalidInput as exc:
        raise bad_value(exc, {"code": "CODE", "project": "--projects"}) from None
    if as_json:
        emit_json(added)
    else:
        info(f"added department {added.code} ({added.name})")


@departments.command("list")
@json_option
@pass_crm
def departments_list(crm: CRM, as_json: bool) -> None:
    """Every department, with its projects."""
    found = crm.directory.departments()
    if as_json:
        emit_json(found)
        return
    table(None, ["code", "name", "email", "projects"],
          [(d.code, d.name, d.email, ", ".join(d.projects)) for d in found])
