"""``recrm sales ...``: the 销控表, holds, tickets, deals, payments and the report.

Conventions of the core's CLI: ``--json`` prints one compact JSON line on stdout; human
messages go to stderr; a refused operation exits 1 with one line, a bad value 2.
Every command acts as ``recrm --as ROLE[:STAFF_ID]``. A unit is named
``PROJECT/BUILDING-ROOM`` (``XL2/3-1201``) or by its id; a customer by id or mobile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click

from recrm_core import CRM, InvalidInput
from recrm_core.cli import (
    current_actor,
    echo,
    emit_json,
    info,
    local_time,
    pass_crm,
    show_rejections,
    table,
)
from recrm_core.cli.customers import bad_value
from recrm_core.db import MAX_ID

from .models import Deal
from .report import report
from .service import Sales

json_option = click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")
party_option = click.option(
    "--party", "parties", multiple=True, metavar="C:ROLE:SHARE",
    help="A co-buyer: customer (id or mobile), role (co_owner, spouse, buyer), share in "
    "percent; repeatable. The buyer holds the rest of 100.")


#: a command's positional UNIT (``--unit`` only on ``deal change-unit``)
UNIT_ARG = {"unit": "UNIT"}


def _call(fn: Callable[..., Any], *args: Any, _options: dict[str, str] | None = None,
          **kwargs: Any) -> Any:
    """``fn(...)``, a value it refuses as invalid being a usage error (exit 2), named
    by its option or argument (``_options`` maps a field to it where they differ)."""
    try:
        return fn(*args, **kwargs)
    except InvalidInput as exc:
        raise bad_value(exc, _options) from None


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value[:40]!r} is not a date (e.g. 2026-12-31)",
                                 param_hint=option) from None


def _deal_line(crm: CRM, d: Deal) -> str:
    who = ", ".join(f"{p.customer_id} {p.role} {p.share}%" for p in d.parties
                    if p.removed_at is None)
    money = f"total {d.total}" if d.total is not None else f"amount {d.amount}"
    late = " (signing overdue)" if d.sign_overdue else ""
    return f"deal {d.id}: {d.unit} {d.state}{late}, {money} CNY; parties {who}"


@click.group("sales")
def sales_group() -> None:
    """The sales-control table (销控), holds, tickets (认筹), deals and payments."""


# -- units ---------------------------------------------------------------------------------
@sales_group.group("units")
def units_group() -> None:
    """Buildings and units: import, list, hold, release."""


@units_group.command("import")
@click.argument("file", type=click.Path())
@click.option("--project", help="The project of rows without a project column.")
@click.option("--errors", "errors_path", metavar="OUT", type=click.Path(dir_okay=False),
              help="Write rejected rows (row,field,reason[,sheet_row]; UTF-8 with BOM) to OUT.")
@click.option("--encoding", metavar="E",
              help="CSV encoding (default: BOM => UTF-8, else UTF-8 or GB18030 by content).")
@click.option("--sheet", metavar="NAME", help="The workbook's sheet (default: the first).")
@json_option
@pass_crm
def units_import(crm: CRM, file: str, project: str | None, errors_path: str | None,
                 encoding: str | None, sheet: str | None, as_json: bool) -> None:
    """Import the 销控表 from a CSV file or an .xlsx workbook (English or Chinese
    headers). Good rows are kept; each rejected row is reported with its row number
    and reason. Exit 0 when the import ran to the end, whatever it rejected."""
    result = _call(Sales(crm).units.import_file, file, project=project,
                   errors_path=errors_path, encoding=encoding, sheet=sheet,
                   actor=current_actor())
    if as_json:
        emit_json(result)
    else:
        table(None, ["rows", "created", "updated", "rejected"],
              [(result.rows, result.created, result.updated, result.rejected)])
        show_rejections(result.rejections, result.rejected, errors_path)
    if result.rejected:
        info(rejections_line(result.rejected, result.rows))


def rejections_line(rejected: int, rows: int) -> str:
    """The import's last line when it rejected rows: what was kept, as it was (a file
    whose every row was refused, one without a project for instance, imported nothing)."""
    kept = rows - rejected
    if not kept:
        return f"{rejected} of {rows} rows rejected; nothing was imported"
    return f"{rejected} of {rows} rows rejected; the other {kept} were imported"


@units_group.command("list")
@click.option("--project", metavar="CODE", help="Only this project's units.")
@click.option("--building", metavar="CODE", help="Only this building's units (its code).")
@click.option("--status", type=click.Choice(["withheld", "available", "held", "subscribed",
                                             "contracted", "handed_over"]),
              metavar="STATUS", help="Only units in this status now: withheld, available, "
                                     "held, subscribed, contracted or handed_over.")
@json_option
@pass_crm
def units_list(crm: CRM, project: str | None, building: str | None, status: str | None,
               as_json: bool) -> None:
    """Units as of now (an expired hold reads as available)."""
    found = _call(Sales(crm).units.list, project=project, building=building, status=status,
                  actor=current_actor())
    if as_json:
        emit_json(found)
        return
    zone = crm.config.zone
    table("units", ["unit", "floor", "layout", "area ㎡", "price", "per ㎡", "status",
                    "held until"],
          [(u.name, u.floor, u.layout, u.gross_area, u.list_price, u.price_per_m2, u.status,
            local_time(u.hold_expires_at, zone)) for u in found])


@units_group.command("hold")
@click.argument("unit")
@click.option("--customer", required=True, metavar="C", help="Customer id or mobile.")
@click.option("--staff", metavar="S", help="The consultant (default: yourself).")
@json_option
@pass_crm
def units_hold(crm: CRM, unit: str, customer: str, staff: str | None, as_json: bool) -> None:
    """Hold an available unit for a customer ([sales] hold_minutes)."""
    hold = _call(Sales(crm).units.hold, unit, customer, staff=staff, actor=current_actor(),
                 _options=UNIT_ARG)
    if as_json:
        emit_json(hold)
    else:
        info(f"{hold.unit} held for customer {hold.customer_id} until "
             f"{local_time(hold.expires_at, crm.config.zone)}")


@units_group.command("release")
@click.argument("unit")
@json_option
@pass_crm
def units_release(crm: CRM, unit: str, as_json: bool) -> None:
    """Release a unit's hold."""
    hold = _call(Sales(crm).units.release, unit, actor=current_actor(), _options=UNIT_ARG)
    emit_json(hold) if as_json else info(f"{hold.unit} released")


# -- tickets -------------------------------------------------------------------------------
@sales_group.group("tickets")
def tickets_group() -> None:
    """Tickets (认筹): issue, call on opening day, refund."""


@tickets_group.command("issue")
@click.option("--project", required=True, metavar="CODE",
              help="The project whose next ticket is issued.")
@click.option("--customer", required=True, metavar="C", help="Customer id or mobile.")
@click.option("--amount", required=True, help="The deposit of intent (诚意金), CNY.")
@json_option
@pass_crm
def tickets_issue(crm: CRM, project: str, customer: str, amount: str, as_json: bool) -> None:
    """Issue the project's next ticket."""
    t = _call(Sales(crm).tickets.issue, project, customer, amount, actor=current_actor())
    emit_json(t) if as_json else info(f"ticket {t.number} at {t.project} for customer "
                                      f"{t.customer_id} ({t.amount} CNY)")


@tickets_group.command("call")
@click.option("--project", required=True, metavar="CODE",
              help="The project whose tickets are called.")
@click.option("--next", "count", required=True, type=click.IntRange(1, 10_000), metavar="N",
              help="How many tickets to call, 1 to 10000.")
@json_option
@pass_crm
def tickets_call(crm: CRM, project: str, count: int, as_json: bool) -> None:
    """Call the next N issued tickets in number order (开盘选房)."""
    called = _call(Sales(crm).tickets.call, project, count, actor=current_actor())
    if as_json:
        emit_json(called)
    else:
        info(f"called {len(called)}: " + (", ".join(str(t.number) for t in called) or "none"))


@tickets_group.command("refund")
@click.argument("number", type=click.IntRange(1, MAX_ID))
@click.option("--project", help="Needed when two projects have a ticket of that number.")
@json_option
@pass_crm
def tickets_refund(crm: CRM, number: int, project: str | None, as_json: bool) -> None:
    """Refund a ticket not converted into a deal."""
    t = _call(Sales(crm).tickets.refund, number, project=project, actor=current_actor())
    emit_json(t) if as_json else info(f"ticket {t.number} at {t.project} refunded")


@tickets_group.command("list")
@click.option("--project", metavar="CODE", help="Only this project's tickets.")
@click.option("--state", type=click.Choice(["issued", "called", "converted", "refunded"]),
              metavar="STATE",
              help="Only tickets in this state: issued, called, converted or refunded.")
@json_option
@pass_crm
def tickets_list(crm: CRM, project: str | None, state: str | None, as_json: bool) -> None:
    """Tickets by project and number."""
    found = Sales(crm).tickets.list(project=project, state=state, actor=current_actor())
    if as_json:
        emit_json(found)
        return
    table("tickets", ["project", "number", "customer", "amount", "state"],
          [(t.project, t.number, t.customer_id, t.amount, t.state) for t in found])


# -- deals ---------------------------------------------------------------------------------
@sales_group.group("deal")
def deal_group() -> None:
    """Deals: subscribe (认购), sign (签约), hand over (交房), show.

    \b
    And the changes after the fact (managers):
    cancel (退房), change-unit (换房), change-buyer (更名).
    """


@deal_group.command("subscribe")
@click.argument("unit")
@click.option("--buyer", required=True, metavar="C", help="The primary buyer (id or mobile).")
@party_option
@click.option("--price", help="The subscribed price (default: the list price).")
@click.option("--discount", default="0", show_default=True, metavar="YUAN",
              help="Taken off the price, in yuan (CNY, to the fen: 20000.50).")
@click.option("--deposit", required=True, help="The deposit paid (定金), CNY.")
@click.option("--ticket", type=click.IntRange(1, MAX_ID),
              help="A called ticket of the buyer's, converted into the deal.")
@click.option("--staff", metavar="S", help="The consultant (default: yourself).")
@json_option
@pass_crm
def deal_subscribe(crm: CRM, unit: str, buyer: str, parties: tuple[str, ...],
                   price: str | None, discount: str, deposit: str, ticket: int | None,
                   staff: str | None, as_json: bool) -> None:
    """Subscribe a unit (认购) for a buyer and co-buyers."""
    deal = _call(Sales(crm).deals.subscribe, unit, buyer, parties=list(parties), price=price,
                 discount=discount, deposit=deposit, ticket=ticket, staff=staff,
                 actor=current_actor(), _options=UNIT_ARG)
    emit_json(deal) if as_json else info(_deal_line(crm, deal) + f"; sign by {deal.sign_by}")


@deal_group.command("sign")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@click.option("--contract-no", required=True, metavar="NO",
              help="The contract's number, unique at the project (1 to 64 characters).")
@click.option("--total", required=True, help="The contract's total, CNY.")
@click.option("--payment", required=True, type=click.Choice(["full", "mortgage",
                                                               "instalments"]),
              metavar="HOW", help="How the buyer pays: full, mortgage or instalments.")
@json_option
@pass_crm
def deal_sign(crm: CRM, deal: int, contract_no: str, total: str, payment: str,
              as_json: bool) -> None:
    """Sign a subscribed deal's contract (签约)."""
    found = _call(Sales(crm).deals.sign, deal, contract_no=contract_no, total=total,
                  payment=payment, actor=current_actor())
    emit_json(found) if as_json else info(_deal_line(crm, found))


@deal_group.command("handover")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@click.option("--date", "day", metavar="DATE", help="The handover date (default: today).")
@json_option
@pass_crm
def deal_handover(crm: CRM, deal: int, day: str | None, as_json: bool) -> None:
    """Hand over a contracted deal's unit (交房)."""
    found = _call(Sales(crm).deals.handover, deal, date=_date(day, "--date"),
                  actor=current_actor())
    emit_json(found) if as_json else info(_deal_line(crm, found))


@deal_group.command("show")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@json_option
@pass_crm
def deal_show(crm: CRM, deal: int, as_json: bool) -> None:
    """A deal: parties, history, schedule, receipts and balance."""
    d = Sales(crm).deals.show(deal, actor=current_actor())
    if as_json:
        emit_json(d)
        return
    zone = crm.config.zone
    echo(_deal_line(crm, d))
    for e in d.history:
        echo(f"  {local_time(e.at, zone)} {e.kind}" + (f": {e.reason}" if e.reason else ""))
    for line in d.schedule:
        late = " OVERDUE" if line.overdue else ""
        echo(f"  due {line.due} {line.kind}: {line.amount} (paid {line.paid}){late}")
    echo(f"  received {d.received}, balance {d.balance}" + (
        f"; next: {d.next_due.outstanding} on {d.next_due.due}" if d.next_due else ""))


@deal_group.command("list")
@click.option("--project", metavar="CODE", help="Only this project's deals.")
@click.option("--customer", type=click.IntRange(1, MAX_ID), metavar="ID",
              help="Only deals this customer is a party to (buyer or co-buyer).")
@click.option("--state", type=click.Choice(["subscribed", "contracted", "handed_over",
                                            "cancelled"]), metavar="STATE",
              help="Only deals in this state: subscribed, contracted, handed_over or "
                   "cancelled.")
@json_option
@pass_crm
def deal_list(crm: CRM, project: str | None, customer: int | None, state: str | None,
              as_json: bool) -> None:
    """Deals, oldest first."""
    found = Sales(crm).deals.list(project=project, customer=customer, state=state,
                                  actor=current_actor())
    if as_json:
        emit_json(found)
        return
    table("deals", ["id", "unit", "state", "buyer", "amount", "total", "sign by"],
          [(d.id, d.unit, d.state + (" (late)" if d.sign_overdue else ""), d.customer_id,
            d.amount, d.total, d.sign_by) for d in found])


@deal_group.command("cancel")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@click.option("--reason", required=True, help="Why it is cancelled (kept in its history).")
@json_option
@pass_crm
def deal_cancel(crm: CRM, deal: int, reason: str, as_json: bool) -> None:
    """Cancel a deal (退房): the unit is available again, stages move back."""
    found = _call(Sales(crm).deals.cancel, deal, reason=reason, actor=current_actor())
    emit_json(found) if as_json else info(_deal_line(crm, found))


@deal_group.command("change-unit")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@click.option("--unit", required=True, help="The new unit.")
@click.option("--price", help="The new price (default: unchanged).")
@click.option("--reason", required=True, help="Why it moves (kept in its history).")
@json_option
@pass_crm
def deal_change_unit(crm: CRM, deal: int, unit: str, price: str | None, reason: str,
                     as_json: bool) -> None:
    """Move a deal to another unit (换房)."""
    found = _call(Sales(crm).deals.change_unit, deal, unit, reason=reason, price=price,
                  actor=current_actor())
    emit_json(found) if as_json else info(_deal_line(crm, found))


@deal_group.command("change-buyer")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@click.option("--buyer", required=True, metavar="C", help="The primary buyer after the change.")
@party_option
@click.option("--reason", required=True,
              help="Why the parties change (kept in its history).")
@json_option
@pass_crm
def deal_change_buyer(crm: CRM, deal: int, buyer: str, parties: tuple[str, ...],
                      reason: str, as_json: bool) -> None:
    """Change or add a deal's parties (更名)."""
    found = _call(Sales(crm).deals.change_buyer, deal, buyer, parties=list(parties),
                  reason=reason, actor=current_actor())
    emit_json(found) if as_json else info(_deal_line(crm, found))


# -- payments ------------------------------------------------------------------------------
@sales_group.group("payments")
def payments_group() -> None:
    """Payment schedules, receipts, balances, reminders."""


@payments_group.command("schedule")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@click.option("--plan", required=True, metavar="PLAN",
              help="full, mortgage (30% down), instalments:N (30% down, the rest in N "
                   "monthly parts, N 1-120), or a TOML file of [[payment]] kind, due, "
                   "amount.")
@json_option
@pass_crm
def payments_schedule(crm: CRM, deal: int, plan: str, as_json: bool) -> None:
    """Set a deal's payment schedule (replacing any before)."""
    lines = _call(Sales(crm).payments.schedule, deal, plan, actor=current_actor())
    if as_json:
        emit_json(lines)
        return
    table(f"deal {deal}", ["due", "kind", "amount", "outstanding"],
          [(x.due, x.kind, x.amount, x.outstanding) for x in lines])


@payments_group.command("receive")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@click.option("--amount", required=True, metavar="YUAN",
              help="The sum received in yuan (CNY, to the fen: 350000.00); at most the "
                   "balance.")
@click.option("--date", "day", required=True, metavar="DATE",
              help="The day it was received, YYYY-MM-DD.")
@click.option("--ref", help="The bank's or cashier's reference (recorded once).")
@json_option
@pass_crm
def payments_receive(crm: CRM, deal: int, amount: str, day: str, ref: str | None,
                     as_json: bool) -> None:
    """Record money received for a deal."""
    r = _call(Sales(crm).payments.receive, deal, amount, date=_date(day, "--date"), ref=ref,
              actor=current_actor())
    emit_json(r) if as_json else info(f"received {r.amount} on {r.received_on} (ref {r.ref})")


@payments_group.command("balance")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@json_option
@pass_crm
def payments_balance(crm: CRM, deal: int, as_json: bool) -> None:
    """A deal's balance and what is due next."""
    d = Sales(crm).deals.show(deal, actor=current_actor())
    data = {"deal": d.id, "received": d.received, "balance": d.balance,
            "next_due": d.next_due}
    if as_json:
        emit_json(data)
        return
    nxt = f"; next {d.next_due.outstanding} on {d.next_due.due}" if d.next_due else ""
    echo(f"deal {d.id}: received {d.received}, balance {d.balance}{nxt}")


@payments_group.command("adjust-area")
@click.argument("deal", type=click.IntRange(1, MAX_ID))
@click.option("--final-area", required=True, help="The measured area (实测面积), ㎡.")
@click.option("--due", required=True, metavar="DATE",
              help="When the difference is due (or refunded), YYYY-MM-DD.")
@json_option
@pass_crm
def payments_adjust(crm: CRM, deal: int, final_area: str, due: str, as_json: bool) -> None:
    """Add the area-difference adjustment (补差) after the unit is measured."""
    day = _date(due, "--due")
    assert day is not None
    lines = _call(Sales(crm).payments.adjust_area, deal, final_area, due=day,
                  actor=current_actor())
    if as_json:
        emit_json(lines)
        return
    table(f"deal {deal}", ["due", "kind", "amount", "outstanding"],
          [(x.due, x.kind, x.amount, x.outstanding) for x in lines])


@payments_group.command("remind")
@click.option("--days", type=click.IntRange(0, 365), default=7, show_default=True,
              help="Announce the lines due within this many days, today included.")
@json_option
@pass_crm
def payments_remind(crm: CRM, days: int, as_json: bool) -> None:
    """Write the sales.payment_due webhook event once for each line due within DAYS."""
    count = Sales(crm).payments.remind(days=days, actor=current_actor())
    emit_json({"reminded": count}) if as_json else info(f"{count} payments announced")


@sales_group.command("receivables")
@click.option("--project", metavar="CODE", help="Only this project (default: all).")
@click.option("--overdue", is_flag=True, help="Only what is past due.")
@json_option
@pass_crm
def receivables_cmd(crm: CRM, project: str | None, overdue: bool, as_json: bool) -> None:
    """What is due when, per project and customer."""
    found = Sales(crm).payments.receivables(project=project, overdue=overdue,
                                            actor=current_actor())
    if as_json:
        emit_json(found)
        return
    table("receivables", ["due", "project", "customer", "unit", "deal", "kind", "outstanding",
                          ""],
          [(r.due, r.project, r.customer_id, r.unit, r.deal_id, r.kind, r.outstanding,
            "OVERDUE" if r.overdue else "") for r in found])


@sales_group.command("report")
@click.option("--project", metavar="CODE", help="Only this project (default: all).")
@json_option
@pass_crm
def report_cmd(crm: CRM, project: str | None, as_json: bool) -> None:
    """Units by state per building, sell-through, deal amount, price per ㎡, receivables."""
    r = report(crm, project=project, actor=current_actor())
    if as_json:
        emit_json(r)
        return
    states = ["withheld", "available", "held", "subscribed", "contracted", "handed_over"]
    table("sales control (销控)", ["project", "building", "units", *states],
          [(b.project, b.building, b.units, *(b.states.get(s, 0) for s in states))
           for b in r.buildings])
    echo(f"sold {r.sold} of {r.for_sale} for sale ({r.sell_through_percent}%); deals "
         f"{r.deal_amount} CNY; average {r.average_price_per_m2 or '-'} CNY/㎡; "
         f"{r.signing_overdue} subscriptions past their signing date")
    echo(f"receivables: {r.receivables_due} due, {r.receivables_overdue} overdue")
