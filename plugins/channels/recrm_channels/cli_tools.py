"""``recrm channel simulate``: registered on the plugin's ``channel`` group (imported by
``cli.py``)."""

from __future__ import annotations

import click

from recrm_core import CRM
from recrm_core.cli import current_actor, echo, emit_json, local_time, pass_crm, table
from recrm_core.tomlfile import read_toml

from .cli import _call, channel_group, json_option
from .simulate import simulate


@channel_group.command("simulate")
@click.option("--project", required=True, metavar="CODE",
              help="The project whose registrations are replayed.")
@click.option("--rules", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A TOML file of rule keys, as for `rules set`.")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="Replay the registrations of the last DAYS days.")
@json_option
@pass_crm
def simulate_cmd(crm: CRM, project: str, path: str, days: int, as_json: bool) -> None:
    """What the last DAYS days would have given under other rules (writes nothing)."""
    values = read_toml(path, lambda why: click.BadParameter(why, param_hint="--rules"))
    result = _call(simulate, crm, project, values, days=days, actor=current_actor())
    if as_json:
        emit_json(result)
        return
    zone = crm.config.zone
    echo(f"{result.project}: {result.registrations} registrations since "
         f"{local_time(result.since, zone)}, replayed under the proposed rules "
         f"(would be v{result.rule_version})")
    echo(f"accepted {result.accepted} → {result.simulated_accepted}, "
         f"rejected {result.rejected} → {result.simulated_rejected}")
    states = sorted(set(result.states) | set(result.simulated_states))
    echo("states: " + ", ".join(f"{s} {result.states.get(s, 0)} → "
                                f"{result.simulated_states.get(s, 0)}" for s in states))
    echo(f"commission: {result.commission} → {result.simulated_commission} CNY")
    if result.commissions:
        table("commission per agency (ledger → simulated)", ["agency", "now", "would be"],
              [(c.agency, c.commission, c.simulated_commission) for c in result.commissions])
    if not result.changes and not result.attributions:
        echo("nothing would change")
        return
    table("registrations that would change", ["id", "mobile", "agency", "agent", "now",
                                              "would be", "why"],
          [(c.registration, c.mobile, c.agency, c.agent, c.state, c.simulated_state,
            c.simulated_reason) for c in result.changes])
    if result.attributions:
        table("attributions that would change", ["mobile", "agency now", "would be"],
              [(a.mobile, a.agency or "-", a.simulated_agency or "-")
               for a in result.attributions])
