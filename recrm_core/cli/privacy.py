"""``recrm privacy ...``: retention (export and erasure are ``recrm customers``)."""

from __future__ import annotations

import click

from ..crm import CRM
from ..errors import Refused
from . import cli, current_actor, pass_crm
from .customers import json_option
from .output import echo_error, emit_json, info


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
    result = crm.privacy.sweep(dry_run=dry_run, actor=current_actor())
    if as_json:
        emit_json(result)
    else:
        verb = "would erase" if dry_run else "erased"
        ids = [r.customer_id for r in result.erased]
        info(f"{verb} {len(ids)} prospect(s) with no interaction for {months} months"
             + (": " + ", ".join(map(str, ids[:50])) if ids else ""))
        for why in result.failed.values():
            echo_error(why)
    if result.failed:
        # cron must hear of it; the others were erased all the same
        raise Refused(f"{len(result.failed)} prospect(s) could not be erased: "
                      + ", ".join(map(str, sorted(result.failed)[:20])))
