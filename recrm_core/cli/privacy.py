"""``recrm privacy ...``: retention (export and erasure are ``recrm customers``)."""

from __future__ import annotations

import click

from ..crm import CRM
from . import cli, current_actor, pass_crm
from .customers import json_option
from .output import emit_json, info


@cli.group()
def privacy() -> None:
    """Privacy: retention sweep (export and erase: recrm customers)."""


@privacy.command("sweep")
@click.option("--dry-run", is_flag=True, help="List who would be erased; change nothing.")
@json_option
@pass_crm
def sweep_cmd(crm: CRM, dry_run: bool, as_json: bool) -> None:
    """Erase the prospects with no interaction for privacy.retention_months, each as an
    audited erasure (off while the setting is not set)."""
    months = crm.config.privacy.retention_months
    if months is None:
        raise click.UsageError("retention is off: set retention_months under [privacy] in "
                               "recrm.toml")
    reports = crm.privacy.sweep(dry_run=dry_run, actor=current_actor())
    if as_json:
        emit_json({"dry_run": dry_run, "erased": [r.customer_id for r in reports]})
        return
    verb = "would erase" if dry_run else "erased"
    info(f"{verb} {len(reports)} prospect(s) with no interaction for {months} months"
         + (": " + ", ".join(str(r.customer_id) for r in reports[:50]) if reports else ""))
