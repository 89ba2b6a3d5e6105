"""``recrm channel dispute open|resolve|list``: registered on the plugin's ``channel``
group (imported by ``cli.py``)."""

from __future__ import annotations

import click

from recrm_core import CRM
from recrm_core.cli import current_actor, emit_json, info, local_time, pass_crm, table

from .cli import _call, channel_group, json_option
from .disputes import Dispute, Disputes


def _line(crm: CRM, d: Dispute) -> str:
    return (f"dispute {d.id}: agency {d.agency} claims the customer of registration "
            f"{d.registration} at {d.project} (claimant registration {d.claimant}): "
            f"{d.state} {local_time(d.resolved_at or d.opened_at, crm.config.zone)}")


@channel_group.group("dispute")
def dispute_group() -> None:
    """Disputes over who brought a customer: open, resolve, list."""


@dispute_group.command("open")
@click.argument("registration", type=int)
@click.option("--note", required=True, help="Why (free text, kept as personal data).")
@click.option("--agency", help="The disputing agency, when it is not the registration's "
              "(disputing another agency's confirmed registration).")
@json_option
@pass_crm
def dispute_open(crm: CRM, registration: int, note: str, agency: str | None,
                 as_json: bool) -> None:
    """Dispute REGISTRATION: your agency's refused, expired or released registration, or
    another agency's that holds the customer."""
    found = _call(Disputes(crm).open, registration, note, agency=agency,
                  actor=current_actor())
    emit_json(found) if as_json else info(_line(crm, found))


@dispute_group.command("resolve")
@click.argument("dispute", type=int)
@click.option("--uphold/--dismiss", default=None,
              help="Uphold (the claimant holds the customer; commission moves) or dismiss.")
@click.option("--note", required=True, help="The ruling's reasons.")
@json_option
@pass_crm
def dispute_resolve(crm: CRM, dispute: int, uphold: bool | None, note: str,
                    as_json: bool) -> None:
    """Resolve an open dispute (managers)."""
    if uphold is None:
        raise click.UsageError("say --uphold or --dismiss")
    found = _call(Disputes(crm).resolve, dispute, uphold=uphold, note=note,
                  actor=current_actor())
    emit_json(found) if as_json else info(_line(crm, found))


@dispute_group.command("list")
@click.option("--agency", metavar="CODE", help="Only disputes this agency opened.")
@click.option("--state", type=click.Choice(["open", "upheld", "dismissed"]), metavar="STATE",
              help="Only disputes in this state: open, upheld or dismissed.")
@json_option
@pass_crm
def dispute_list(crm: CRM, agency: str | None, state: str | None, as_json: bool) -> None:
    """Disputes, newest first (partners: their agency's)."""
    found = Disputes(crm).list(agency=agency, state=state, actor=current_actor())
    if as_json:
        emit_json(found)
        return
    zone = crm.config.zone
    table("disputes", ["id", "registration", "claimant", "agency", "project", "state",
                       "opened", "resolved"],
          [(d.id, d.registration, d.claimant, d.agency, d.project, d.state,
            local_time(d.opened_at, zone), local_time(d.resolved_at, zone))
           for d in found])
