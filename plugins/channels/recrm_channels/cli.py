"""``recrm channel ...``: agencies, agents, rules and registrations on the command line.

Conventions of the core's CLI: ``--json`` prints one compact JSON line on stdout; human
messages go to stderr; a refused operation (a refused registration too) exits 1 with
one line, a bad value 2. Every command acts as ``recrm --as ROLE[:STAFF_ID]``.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click

from recrm_core import CRM, InvalidInput
from recrm_core.cli import (
    current_actor,
    echo,
    emit_json,
    info,
    local_moment,
    local_time,
    pass_crm,
    table,
)
from recrm_core.cli.output import echo_error
from recrm_core.tomlfile import read_toml

from .models import Registration
from .service import Channels, RegistrationRefused

json_option = click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")
#: what ``registrations --state`` filters by
REGISTRATION_STATES = ("pending", "confirmed", "converted", "expired", "released", "rejected")


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except InvalidInput as exc:
        raise _bad_value(exc) from None


def _bad_value(exc: InvalidInput, options: Mapping[str, str] | None = None) -> click.BadParameter:
    """The service's refusal as a usage error naming the option: ``options`` maps a
    field to the option that gave it when the option is named otherwise."""
    field = exc.field
    hint = (options or {}).get(field or "") or (f"--{field.replace('_', '-')}" if field else None)
    return click.BadParameter(exc.reason, param_hint=hint)


def _time(value: str | None, crm: CRM, option: str) -> dt.datetime | None:
    return local_moment(value, crm.config.zone, option)


def _line(crm: CRM, r: Registration) -> str:
    zone = crm.config.zone
    until = r.valid_until if r.state == "pending" else r.protected_until
    tail = f" until {local_time(until, zone)}" if r.state in ("pending", "confirmed") else ""
    return (f"registration {r.id}: {r.mobile} at {r.project} by {r.agent} ({r.agency}): "
            f"{r.state}{tail}")


@click.group("channel")
def channel_group() -> None:
    """Agencies (中介/渠道), their agents, registrations (报备) and 判客."""


@channel_group.group("agency")
def agency_group() -> None:
    """Agencies: add, list, suspend."""


@agency_group.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The agency's name (at most 200 characters).")
@click.option("--contact", help="Who to call there and how (free text, at most 200 characters).")
@json_option
@pass_crm
def agency_add(crm: CRM, code: str, name: str, contact: str | None, as_json: bool) -> None:
    """Add an agency."""
    try:
        agency = Channels(crm).add_agency(code, name, contact, actor=current_actor())
    except InvalidInput as exc:  # the code is this command's argument, not an option
        raise _bad_value(exc, {"agency": "CODE"}) from None
    emit_json(agency) if as_json else info(f"agency {agency.code} ({agency.name}) added")


@agency_group.command("list")
@json_option
@pass_crm
def agency_list(crm: CRM, as_json: bool) -> None:
    """List agencies."""
    found = Channels(crm).agencies(actor=current_actor())
    if as_json:
        emit_json(found)
        return
    table("agencies", ["code", "name", "status", "contact"],
          [(a.code, a.name, a.status, a.contact) for a in found])


@agency_group.command("suspend")
@click.argument("code")
@json_option
@pass_crm
def agency_suspend(crm: CRM, code: str, as_json: bool) -> None:
    """Suspend an agency: it registers nobody until further notice."""
    agency = Channels(crm).suspend_agency(code, actor=current_actor())
    emit_json(agency) if as_json else info(f"agency {agency.code} suspended")


@channel_group.group("agent")
def agent_group() -> None:
    """Agents: add, list (each is staff of role partner)."""


@agent_group.command("add")
@click.argument("agent_id")
@click.option("--name", required=True, help="The agent's full name.")
@click.option("--agency", required=True, metavar="CODE", help="The agency the agent works for.")
@click.option("--mobile", help="The agent's own mobile number (kept in the staff directory).")
@json_option
@pass_crm
def agent_add(crm: CRM, agent_id: str, name: str, agency: str, mobile: str | None,
              as_json: bool) -> None:
    """Add an agent of an agency (and a partner in the staff directory)."""
    try:
        agent = Channels(crm).add_agent(agent_id, name, agency, mobile, actor=current_actor())
    except InvalidInput as exc:  # the id is this command's argument, not an option
        raise _bad_value(exc, {"agent": "AGENT_ID"}) from None
    emit_json(agent) if as_json else info(f"agent {agent.id} of {agent.agency} added")


@agent_group.command("list")
@click.option("--agency", metavar="CODE", help="Only this agency's agents.")
@json_option
@pass_crm
def agent_list(crm: CRM, agency: str | None, as_json: bool) -> None:
    """List agents."""
    found = Channels(crm).agents(agency, actor=current_actor())
    if as_json:
        emit_json(found)
        return
    table("agents", ["id", "agency", "name"], [(a.id, a.agency, a.name) for a in found])


@channel_group.group("rules")
def rules_group() -> None:
    """A project's registration rules, versioned."""


@rules_group.command("set")
@click.option("--project", required=True, metavar="CODE", help="The project the rules are for.")
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A TOML file of rule keys (registration_valid_hours = 72, ...); keys "
                   "left out take the [channels] defaults.")
@click.option("--from", "start", metavar="DATETIME",
              help="In force from YYYY-MM-DD[THH:MM], now or later (default: now).")
@json_option
@pass_crm
def rules_set(crm: CRM, project: str, path: str, start: str | None, as_json: bool) -> None:
    """Add a rule version for a project from a TOML file of rule keys."""
    values = read_toml(path, lambda why: click.BadParameter(why, param_hint="--file"))
    try:
        result = Channels(crm).set_rules(project, values, _time(start, crm, "--from"),
                                         actor=current_actor())
    except InvalidInput as exc:
        raise _bad_value(exc, {"rules": "--file"}) from None
    if as_json:
        emit_json(result)
    else:
        info(f"rules v{result.version} for {result.project} from "
             f"{local_time(result.effective_from, crm.config.zone)}")


@rules_group.command("show")
@click.option("--project", required=True, metavar="CODE", help="The project whose rules to show.")
@json_option
@pass_crm
def rules_show(crm: CRM, project: str, as_json: bool) -> None:
    """Every rule version of a project (v0: the [channels] defaults)."""
    versions = Channels(crm).rules(project, actor=current_actor())
    if as_json:
        emit_json(versions)
        return
    for v in versions:
        since = local_time(v.effective_from, crm.config.zone) or "always"
        keys = ", ".join(f"{k}={val}" for k, val in v.rules.model_dump().items())
        echo(f"v{v.version} from {since}: {keys}")


@channel_group.command("register")
@click.option("--agent", help="The agent's id (a partner registers as themselves: omit it).")
@click.option("--project", required=True, metavar="CODE", help="The project registered for.")
@click.option("--mobile", required=True, help="The customer's mobile number.")
@click.option("--name", help="The customer's name, as the agent gives it.")
@json_option
@pass_crm
def register_cmd(crm: CRM, agent: str | None, project: str, mobile: str, name: str | None,
                 as_json: bool) -> None:
    """Register a customer's mobile for a project as an agent (报备)."""
    try:
        reg = _call(Channels(crm).register, agent, project, mobile, name,
                    actor=current_actor())
    except RegistrationRefused as exc:
        if as_json:
            emit_json(exc.registration)
        echo_error(str(exc))
        sys.exit(1)
    emit_json(reg) if as_json else info(_line(crm, reg))


@channel_group.command("visit")
@click.option("--project", required=True, metavar="CODE", help="The project visited.")
@click.option("--mobile", required=True,
              help="The visitor's mobile number (finds or creates the customer).")
@click.option("--agent", help="The agent who came with the customer.")
@click.option("--name", help="The visitor's name (kept on a new customer or one without a name).")
@click.option("--at", metavar="DATETIME",
              help="When, YYYY-MM-DD[THH:MM] local time (default: now).")
@json_option
@pass_crm
def visit_cmd(crm: CRM, project: str, mobile: str, agent: str | None, name: str | None,
              at: str | None, as_json: bool) -> None:
    """Log a visit at the sales office and judge (判客)."""
    reg = _call(Channels(crm).visit, project, mobile, agent, name,
                at=_time(at, crm, "--at"), actor=current_actor())
    if as_json:
        emit_json(reg)
    else:
        info(_line(crm, reg) if reg else "visit logged; no registration at the project")


@channel_group.command("explain")
@click.argument("registration", type=int)
@json_option
@pass_crm
def explain_cmd(crm: CRM, registration: int, as_json: bool) -> None:
    """Why a registration is in its state."""
    found = Channels(crm).explain(registration, actor=current_actor())
    if as_json:
        emit_json(found)
        return
    echo(_line(crm, found.registration))
    echo(f"rule v{found.rule_version}: {found.explanation}")
    for t in found.transitions:
        echo(f"  {local_time(t.at, crm.config.zone)} {t.state}: {t.reason or ''}")
    from .disputes import Disputes

    for d in Disputes(crm).list(registration=registration, actor=current_actor()):
        echo(f"  dispute {d.id} by agency {d.agency} (claimant registration {d.claimant}): "
             f"{d.state}")


@channel_group.command("sweep")
@json_option
@pass_crm
def sweep_cmd(crm: CRM, as_json: bool) -> None:
    """Write the expiries and releases that time brought (safe to run again)."""
    result = Channels(crm).sweep(actor=current_actor())
    if as_json:
        emit_json(result)
    else:
        info(f"checked {result.checked}: {result.expired} expired, {result.released} released")


@channel_group.command("registrations")
@click.option("--agency", metavar="CODE", help="Only this agency's registrations.")
@click.option("--state", type=click.Choice(REGISTRATION_STATES), metavar="STATE",
              help="Only registrations in this state: " + ", ".join(REGISTRATION_STATES)
              + ".")
@click.option("--project", metavar="CODE", help="Only registrations at this project.")
@json_option
@pass_crm
def registrations_cmd(crm: CRM, agency: str | None, state: str | None, project: str | None,
                      as_json: bool) -> None:
    """Registrations as of now (partners: their agency's, masked)."""
    found = Channels(crm).registrations(agency=agency, state=state, project=project,
                                        actor=current_actor())
    if as_json:
        emit_json(found)
        return
    zone = crm.config.zone
    table("registrations", ["id", "mobile", "project", "agency", "agent", "state", "until"],
          [(r.id, r.mobile, r.project, r.agency, r.agent, r.state,
            local_time(r.valid_until if r.state == "pending" else r.protected_until, zone))
           for r in found])


# terms, commissions and report: their own module, registered on channel_group
from . import cli_disputes as cli_disputes  # noqa: E402  (dispute: registered on channel_group)
from . import cli_money as cli_money  # noqa: E402
from . import cli_tools as cli_tools  # noqa: E402  (simulate: registered on channel_group)
