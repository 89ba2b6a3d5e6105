"""``recrm channel terms ...``, ``commissions`` and ``report`` (loaded by cli.py)."""

from __future__ import annotations

import datetime as dt

import click

from recrm_core import CRM
from recrm_core.cli import current_actor, echo, emit_json, info, local_time, pass_crm, table
from recrm_core.reports import BY_CHOICES, By

from .cli import _call, channel_group, json_option
from .commission import Commissions
from .report import instant, report


@channel_group.group("terms")
def terms_group() -> None:
    """Commission terms per agency and project."""


@terms_group.command("set")
@click.option("--agency", required=True, metavar="CODE", help="The agency the terms are for.")
@click.option("--project", required=True, metavar="CODE", help="The project the terms apply at.")
@click.option("--percent", metavar="X", help="The deal's commission: X% of the contract amount.")
@click.option("--fixed", metavar="Y", help="The deal's commission: a fixed sum (CNY).")
@click.option("--visit-reward", metavar="R", help="Reward for a confirmed visit (CNY).")
@click.option("--subscription-reward", metavar="R", help="Reward for a subscription (CNY).")
@json_option
@pass_crm
def terms_set(crm: CRM, agency: str, project: str, percent: str | None, fixed: str | None,
              visit_reward: str | None, subscription_reward: str | None,
              as_json: bool) -> None:
    """Set an agency's commission terms at a project (--percent or --fixed)."""
    terms = _call(Commissions(crm).set_terms, agency, project, percent=percent, fixed=fixed,
                  visit_reward=visit_reward, subscription_reward=subscription_reward,
                  actor=current_actor())
    if as_json:
        emit_json(terms)
        return
    deal = f"{terms.percent}%" if terms.percent is not None else f"{terms.fixed} CNY"
    info(f"terms of {terms.agency} at {terms.project}: deal {deal}, visit "
         f"{terms.visit_reward}, subscription {terms.subscription_reward}")


@terms_group.command("show")
@click.option("--agency", metavar="CODE", help="Only this agency's terms.")
@click.option("--project", metavar="CODE", help="Only the terms at this project.")
@json_option
@pass_crm
def terms_show(crm: CRM, agency: str | None, project: str | None, as_json: bool) -> None:
    """Commission terms (all, or an agency's, or a project's)."""
    found = Commissions(crm).terms(agency, project, actor=current_actor())
    if as_json:
        emit_json(found)
        return
    table("terms", ["agency", "project", "percent", "fixed", "visit", "subscription"],
          [(t.agency, t.project, t.percent, t.fixed, t.visit_reward, t.subscription_reward)
           for t in found])


@channel_group.command("commissions")
@click.option("--agency", metavar="CODE", help="Only this agency's entries.")
@json_option
@pass_crm
def commissions_cmd(crm: CRM, agency: str | None, as_json: bool) -> None:
    """The commission ledger (partners: their agency's, masked)."""
    found = Commissions(crm).entries(agency, actor=current_actor())
    if as_json:
        emit_json(found)
        return
    zone = crm.config.zone
    table("commissions", ["id", "registration", "agency", "project", "kind", "amount",
                          "unit", "at", "note"],
          [(e.id, e.registration, e.agency, e.project, e.kind, e.amount, e.unit,
            local_time(e.at, zone), e.note) for e in found])


def _day(value: str | None, crm: CRM, option: str, after: bool = False) -> dt.datetime | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (e.g. 2026-01-31)",
                                 param_hint=option) from None
    return instant(crm, day, after=after)


@channel_group.command("report")
@click.option("--project", metavar="CODE", help="Only this project.")
@click.option("--from", "start", metavar="DAY",
              help="From this day (YYYY-MM-DD in the CRM's zone, included).")
@click.option("--to", "end", metavar="DAY", help="To this day (YYYY-MM-DD, included).")
@click.option("--by", type=click.Choice(BY_CHOICES), default="all",
              show_default=True, help="A line per agency, project and period.")
@json_option
@pass_crm
def report_cmd(crm: CRM, project: str | None, start: str | None, end: str | None, by: By,
               as_json: bool) -> None:
    """Per agency, project (and period): registrations, refusals by reason, visits,
    conversions, deal amount, commission accrued and clawed back."""
    found = _call(report, crm, project=project, start=_day(start, crm, "--from"),
                  end=_day(end, crm, "--to", after=True), by=by, actor=current_actor())
    if as_json:
        emit_json(found)
        return
    table("channels report", ["agency", "project", "period", "registered", "rejected",
                              "visited", "subscribed", "contracted", "deal amount",
                              "accrued", "clawed back"],
          [(r.agency, r.project, r.period, r.registrations,
            ", ".join(f"{k} {v}" for k, v in sorted(r.rejected.items())) or "0",
            r.confirmed, r.subscribed, r.contracted, r.deal_amount, r.accrued,
            r.clawed_back) for r in found])
    if not found:
        echo("no registrations or commission entries")
