"""``recrm member ...``: the club on the command line.

Conventions of the core's CLI: ``--json`` prints one compact JSON line on stdout;
human messages go to stderr; a refused operation exits 1, a bad value 2.

Every command acts as ``recrm --as ROLE[:STAFF_ID]`` (``current_actor``; a command's
``--actor STAFF`` names the staff id) and passes that actor to the service, which
applies who sees what: partners are refused members' details, analysts read no
free text, partners and analysts change nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import click

from recrm_core import CRM, Actor, InvalidInput, Refused, utcnow
from recrm_core.access import require_role
from recrm_core.cli import (
    current_actor,
    echo,
    emit_json,
    info,
    local_moment,
    local_time,
    on_terminal,
    pass_crm,
    table,
)

from .models import LedgerEntry, Member, Referral
from .service import STAFF, Membership

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")


def actor_option(required: bool = False) -> Callable[[F], F]:
    return click.option("--actor", metavar="STAFF", required=required,
                        help="Staff id performing the operation.")


def _actor(staff: str | None = None) -> Actor:
    """Who runs the command: ``--as ROLE[:STAFF_ID]`` (or ``RECRM_AS``), with the staff
    id of the command's ``--actor`` when given (a bad one is a usage error)."""
    return current_actor(staff or None)


def _usage(exc: InvalidInput) -> click.BadParameter:
    """A value from the command line that the service rejects is a usage error."""
    hint = f"--{exc.field.replace('_', '-')}" if exc.field else None
    return click.BadParameter(exc.reason, param_hint=hint)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except InvalidInput as exc:
        raise _usage(exc) from None


def _parse_now(value: str | None, crm: CRM) -> dt.datetime | None:
    return local_moment(value, crm.config.zone, "--now")


def _member_line(crm: CRM, m: Member) -> str:
    since = local_time(m.enrolled_at, crm.config.zone)
    return (f"member {m.number} (customer {m.customer_id}): {m.status}, tier {m.tier}, "
            f"{m.balance} points, since {since}")


def _ledger_table(crm: CRM, entries: list[LedgerEntry]) -> None:
    zone = crm.config.zone
    table("points ledger", ["id", "when", "kind", "points", "project", "reason", "expires"],
          [(e.id, local_time(e.occurred_at, zone), e.kind, f"{e.points:+d}", e.project,
            e.reason, local_time(e.expires_at, zone)) for e in entries])


def _referral_line(r: Referral) -> str:
    return (f"referral {r.id}: customer {r.referrer_id} referred customer {r.referred_id} "
            f"for {r.project} ({r.status})" + (f": {r.note}" if r.note else ""))


@click.group("member")
def member_group() -> None:
    """The owners' club: members, tiers, points and referrals (老带新)."""


@member_group.command("enroll")
@click.argument("customer_id", type=int)
@click.option("--note", help="Why or how the customer joined.")
@actor_option()
@json_option
@pass_crm
def enroll_cmd(crm: CRM, customer_id: int, note: str | None, actor: str | None,
               as_json: bool) -> None:
    """Enrol a customer, or re-join one who left (same number, history kept)."""
    member = _call(Membership(crm).enroll, customer_id, actor=_actor(actor), note=note)
    if as_json:
        emit_json(member)
    else:
        info(_member_line(crm, member))


@member_group.command("leave")
@click.argument("customer_id", type=int)
@click.option("--reason", help="Why the customer left (kept in the member's history).")
@actor_option()
@json_option
@pass_crm
def leave_cmd(crm: CRM, customer_id: int, reason: str | None, actor: str | None,
              as_json: bool) -> None:
    """End a membership; number, points and history are kept for a re-join."""
    member = _call(Membership(crm).leave, customer_id, reason=reason, actor=_actor(actor))
    if as_json:
        emit_json(member)
    else:
        info(_member_line(crm, member))


@member_group.command("show")
@click.argument("customer_id", type=int)
@json_option
@pass_crm
def show_cmd(crm: CRM, customer_id: int, as_json: bool) -> None:
    """A member: tier, balance, ledger, tier changes, history and referrals."""
    view = Membership(crm).show(customer_id, actor=_actor())
    if as_json:
        emit_json(view)
        return
    zone = crm.config.zone
    echo(_member_line(crm, view.member))
    b = view.balance
    echo(f"balance {b.balance}, lifetime {b.lifetime_points}, redeemed {b.redeemed}, "
         f"expired {b.expired}, due to expire {b.due_to_expire}")
    _ledger_table(crm, view.ledger)
    table("tier changes", ["when", "from", "to", "reason"],
          [(local_time(t.at, zone), t.old_tier, t.new_tier, t.reason)
           for t in view.tier_changes])
    table("history", ["when", "action", "number", "note"],
          [(local_time(e.at, zone), e.action, e.number, e.note) for e in view.events])
    for r in view.referrals_made + view.referred_by:
        echo(_referral_line(r))


@member_group.command("points")
@click.argument("customer_id", type=int, required=False)
@click.option("--expire", is_flag=True,
              help="Write off expired points (of CUSTOMER_ID, or of every member).")
@click.option("--now", metavar="DATETIME",
              help="With --expire: the moment to expire at (default: now).")
@click.option("--dry-run", is_flag=True,
              help="With --expire: show what would expire and change nothing.")
@click.option("--yes", is_flag=True, help="With --expire: do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="With --expire: accept a --now more than a day in the future.")
@json_option
@pass_crm
def points_cmd(crm: CRM, customer_id: int | None, expire: bool, now: str | None,
               dry_run: bool, yes: bool, force: bool, as_json: bool) -> None:
    """A member's balance and ledger; with --expire, run the expiry."""
    service = Membership(crm)
    if expire:
        _expire(crm, service, customer_id, _future_checked(_parse_now(now, crm), force),
                dry_run=dry_run, yes=yes, as_json=as_json, actor=_actor())
        return
    for given, option in ((now, "--now"), (dry_run, "--dry-run"), (yes, "--yes"),
                          (force, "--force")):
        if given:
            raise click.UsageError(f"{option} goes with --expire")
    if customer_id is None:
        raise click.UsageError("give a CUSTOMER_ID, or --expire")
    actor = _actor()
    balance = service.balance(customer_id, actor=actor)
    ledger = service.ledger(customer_id, actor=actor)
    if as_json:
        emit_json({"balance": balance, "ledger": ledger})
        return
    echo(f"member {balance.number}: {balance.balance} points "
         f"(lifetime {balance.lifetime_points}, due to expire {balance.due_to_expire})")
    _ledger_table(crm, ledger)


def _future_checked(at: dt.datetime | None, force: bool) -> dt.datetime | None:
    """An expiry run writes off for good whatever is due at ``at``: a mistyped year
    (9999-12-31) would empty every member's balance, so the future needs --force."""
    if at is not None and not force and at > utcnow() + dt.timedelta(days=1):
        raise click.BadParameter(
            "is more than a day in the future: that would expire points before they are "
            "due (give --force if that is meant)",
            param_hint="--now",
        )
    return at


def _expire(crm: CRM, service: Membership, customer_id: int | None,
            at: dt.datetime | None, *, dry_run: bool, yes: bool, as_json: bool,
            actor: Actor) -> None:
    if not dry_run:
        # Refused before the preview, so a role that may not expire is told that,
        # not asked to confirm.
        require_role(actor, STAFF, "change the club")
    # The preview is the run itself with writing switched off, at the same moment,
    # so what is confirmed is what the rule will write off.
    preview = _call(service.expire, at, customer_id=customer_id, dry_run=True, actor=actor)
    what = f"{preview.points} points of {preview.members} members"
    when = local_time(preview.now, crm.config.zone)
    if dry_run or not preview.points:
        if as_json:
            emit_json(preview)
        else:
            info(f"would expire {what} at {when}; nothing was changed" if dry_run
                 else f"expired {what}")
        return
    if not yes:
        if not on_terminal():
            raise Refused(f"would expire {what} at {when}; nothing was changed: "
                          "no terminal to confirm on, give --yes")
        info(f"this expires {what} at {when}, for good")
        if not click.confirm("expire them?", default=False, err=True):
            raise Refused(f"declined: nothing was changed ({what} not expired)")
    result = _call(service.expire, preview.now, customer_id=customer_id, actor=actor)
    if as_json:
        emit_json(result)
    else:
        info(f"expired {result.points} points of {result.members} members")


@member_group.command("earn")
@click.argument("customer_id", type=int)
@click.option("--kind", required=True, help="What earned it: contract, event, ...")
@click.option("--ref", required=True,
              help="The event's key (an event id, a contract number): it awards once.")
@click.option("--points", type=int,
              help="How many, a positive whole number (default: [membership] earn for "
                   "the kind).")
@click.option("--project", metavar="CODE",
              help="The project the event belongs to (a known project code).")
@click.option("--reason", help="Shown in the ledger (default: the kind; at most 200 "
                               "characters).")
@actor_option()
@json_option
@pass_crm
def earn_cmd(crm: CRM, customer_id: int, kind: str, ref: str, points: int | None,
             project: str | None, reason: str | None, actor: str | None,
             as_json: bool) -> None:
    """Award points for one event; sending the same event again awards nothing."""
    award = _call(Membership(crm).earn, customer_id, kind, ref, points=points,
                  project=project, reason=reason, actor=_actor(actor))
    if as_json:
        emit_json(award)
    elif award.awarded:
        info(f"awarded {award.entry.points} points; balance {award.balance}")
    else:
        info(f"{kind} {ref} was awarded before; balance {award.balance}")


@member_group.command("redeem")
@click.argument("customer_id", type=int)
@click.option("--points", type=int, required=True,
              help="How many to spend, a positive whole number.")
@click.option("--ref", help="Order number: a retried redemption deducts once.")
@click.option("--reason", help="What they were spent on (at most 200 characters).")
@actor_option()
@json_option
@pass_crm
def redeem_cmd(crm: CRM, customer_id: int, points: int, ref: str | None, reason: str | None,
               actor: str | None, as_json: bool) -> None:
    """Spend points; more than the balance is refused (exit 1)."""
    result = _call(Membership(crm).redeem, customer_id, points, ref=ref, reason=reason,
                   actor=_actor(actor))
    if as_json:
        emit_json(result)
    elif result.redeemed:
        info(f"redeemed {points} points; balance {result.balance}")
    else:
        info(f"{ref} was redeemed before; balance {result.balance}")


@member_group.command("adjust")
@click.argument("customer_id", type=int)
@click.option("--points", type=int, required=True, help="Signed: 200 or -200.")
@click.option("--reason", required=True,
              help="Why the balance is corrected (at most 200 characters).")
@actor_option(required=True)
@json_option
@pass_crm
def adjust_cmd(crm: CRM, customer_id: int, points: int, reason: str, actor: str,
               as_json: bool) -> None:
    """Correct a balance by hand, with a reason and who did it."""
    if not actor:
        raise click.BadParameter("an adjustment needs the staff who makes it",
                                 param_hint="--actor")
    staff = _actor(actor)
    entry = _call(Membership(crm).adjust, customer_id, points, reason=reason, actor=staff)
    if as_json:
        emit_json(entry)
    else:
        info(f"adjusted by {entry.points:+d} points (entry {entry.id})")


@member_group.command("refer")
@click.argument("referrer_id", type=int)
@click.argument("referred_id", type=int)
@click.option("--project", required=True, metavar="CODE",
              help="The project the friend is referred to; signing there rewards.")
@actor_option()
@json_option
@pass_crm
def refer_cmd(crm: CRM, referrer_id: int, referred_id: int, project: str, actor: str | None,
              as_json: bool) -> None:
    """Record that a member referred a customer for a project (老带新)."""
    referral = _call(Membership(crm).refer, referrer_id, referred_id, project,
                     actor=_actor(actor))
    if as_json:
        emit_json(referral)
    else:
        info(_referral_line(referral))


@member_group.command("tiers")
@json_option
@pass_crm
def tiers_cmd(crm: CRM, as_json: bool) -> None:
    """The tiers from [membership] settings, with their member counts."""
    tiers = Membership(crm).tiers(actor=_actor())
    if as_json:
        emit_json(tiers)
        return
    table("tiers", ["tier", "min points", "min contracts", "members"],
          [(t.name, t.min_points, t.min_contracts, t.members) for t in tiers])


@member_group.command("report")
@click.option("--project", help="Narrow the referral figures to one project.")
@json_option
@pass_crm
def report_cmd(crm: CRM, project: str | None, as_json: bool) -> None:
    """Members by tier, points issued/redeemed/expired, referral conversion."""
    report = _call(Membership(crm).report, project=project, actor=_actor())
    if as_json:
        emit_json(report)
        return
    table("members by tier", ["tier", "members"], list(report.members_by_tier.items()))
    p = report.points
    table("points", ["issued", "redeemed", "expired", "deducted", "outstanding"],
          [(p.issued, p.redeemed, p.expired, p.deducted, p.outstanding)])

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    table("referrals by member", ["customer", "number", "name", "made", "converted", "rate"],
          [(r.customer_id, r.number, r.name, r.made, r.converted, rate(r.conversion_rate))
           for r in report.referrals_by_member])
    table("referrals by project", ["project", "made", "converted", "rate"],
          [(r.project, r.made, r.converted, rate(r.conversion_rate))
           for r in report.referrals_by_project])
