"""Payment schedules and receivables: what is due, when, and what came in.

A schedule is a list of lines ``{kind, due, amount}``: a built-in plan (``full``,
``mortgage``, ``instalments:N``) or a TOML file. Receipts are allocated to the lines
in due order (a negative line — an area-difference refund, 补差 — is a credit), so
each line shows what is paid and outstanding, and the deal what is due next. A
receipt with a reference is recorded once however often it is sent.

``remind`` writes the documented webhook event ``sales.payment_due`` once per line
that falls due within the next days, for the newsletter or an integrator to remind
the customer.
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    InvalidInput,
    Refused,
    insert_or_ignore,
    project_code,
    require_role,
    utcnow,
)
from recrm_core.tomlfile import read_toml

from .deals import load_deal
from .models import Instalment, Receipt, Receivable
from .money import CENT, ZERO, amount
from .refs import OFFICE, READERS, code_text, entered_day, local_date, name_of
from .tables import ACTIVE_DEAL_STATES, DealEventRow, DealRow, InstalmentRow, ReceiptRow, UnitRow

KINDS = ("deposit", "down_payment", "mortgage", "instalment", "area_adjustment")
#: the share of the total paid before a mortgage or instalments (首付)
DOWN_SHARE = Decimal("0.30")
EVENT = "sales.payment_due"
BUILT_IN = ("full", "mortgage")


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def plan_lines(plan: str, deal: DealRow, start: dt.date,
               subscribed: dt.date) -> list[dict[str, Any]]:
    """The lines of a built-in plan over the deal's total (the contract's, else the
    subscribed amount): the deposit (received at subscription), then the rest."""
    total = deal.total if deal.total is not None else deal.amount
    lines: list[dict[str, Any]] = [{"kind": "deposit", "due": subscribed,
                                    "amount": deal.deposit}]
    rest = total - deal.deposit
    if plan == "full":
        lines.append({"kind": "down_payment", "due": start + dt.timedelta(days=7),
                      "amount": rest})
        return lines
    down = max((total * DOWN_SHARE).quantize(CENT) - deal.deposit, ZERO)
    if down:
        lines.append({"kind": "down_payment", "due": start + dt.timedelta(days=7),
                      "amount": down})
    financed = rest - down
    if plan == "mortgage":
        lines.append({"kind": "mortgage", "due": start + dt.timedelta(days=45),
                      "amount": financed})
        return lines
    kind, _, count = plan.partition(":")
    if kind != "instalments" or not count.isdigit() or not 1 <= int(count) <= 120:
        raise InvalidInput("plan", "a plan is full, mortgage, instalments:N (N from 1 to "
                           "120) or a TOML file")
    n = int(count)
    each = (financed / n).quantize(CENT)
    for i in range(n):
        part = each if i < n - 1 else financed - each * (n - 1)
        lines.append({"kind": "instalment", "due": add_months(start, i + 1), "amount": part})
    return lines


def built_in(plan: str) -> bool:
    """Whether ``plan`` names a built-in plan (``instalments:N`` checked for its N
    later) rather than a TOML file."""
    return plan in BUILT_IN or plan.startswith("instalments:")


def file_lines(path: str | Path) -> list[dict[str, Any]]:
    """``[[payment]]`` tables (kind, due, amount) of a TOML file."""
    data = read_toml(path, lambda why: InvalidInput(
        "plan", f"no plan: give full, mortgage, instalments:N or a TOML file ({why})"))
    items = data.get("payment")
    if not isinstance(items, list) or not items:
        raise InvalidInput("plan", "the plan file lists [[payment]] tables with kind, due, "
                           "amount")
    lines = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or set(item) != {"kind", "due", "amount"}:
            raise InvalidInput("plan", f"payment {i}: give exactly kind, due and amount")
        if item["kind"] not in KINDS:
            raise InvalidInput("plan", f"payment {i}: kind is one of {', '.join(KINDS)}")
        due = item["due"]
        if isinstance(due, dt.datetime) or not isinstance(due, dt.date):
            raise InvalidInput("plan", f"payment {i}: due is a date (2026-12-31)")
        try:
            entered_day(due, "due")
        except InvalidInput as exc:
            raise InvalidInput("plan", f"payment {i}: {exc.reason}") from None
        if isinstance(item["amount"], float):
            raise InvalidInput("plan", f"payment {i}: write the amount as a string "
                               "(\"120000.00\"): a TOML float is not exact")
        value = amount(item["amount"], f"payment {i} amount",
                       signed=item["kind"] == "area_adjustment")
        lines.append({"kind": item["kind"], "due": due, "amount": value})
    return lines


def allocate(lines: Sequence[InstalmentRow], received: Decimal,
             today: dt.date) -> list[Instalment]:
    """Each line with what the receipts (and refund credits) paid, oldest due first."""
    credit = received + sum((-line.amount for line in lines if line.amount < 0), ZERO)
    out = []
    for line in sorted(lines, key=lambda r: (r.due, r.id)):
        if line.amount < 0:
            paid = line.amount
        else:
            paid = min(line.amount, credit)
            credit -= paid
        outstanding = line.amount - paid
        out.append(Instalment(id=line.id, kind=line.kind,
                              due=line.due, amount=line.amount, paid=paid,
                              outstanding=outstanding,
                              overdue=outstanding > 0 and line.due < today))
    return out


def owed(deal: DealRow, lines: Sequence[InstalmentRow]) -> Decimal:
    """What the deal comes to: the contract's total (before signing the subscribed
    amount) and any area adjustment (补差) — with or without a schedule."""
    total = deal.total if deal.total is not None else deal.amount
    return total + sum((line.amount for line in lines if line.kind == "area_adjustment"),
                       ZERO)


def schedule_of(session: Session, deal: DealRow, today: dt.date) -> dict[str, Any]:
    """The deal's schedule, receipts, balance and next due line (for the Deal model)."""
    lines = list(session.scalars(select(InstalmentRow).where(InstalmentRow.deal_id == deal.id)))
    receipts = list(session.scalars(select(ReceiptRow).where(ReceiptRow.deal_id == deal.id)
                                    .order_by(ReceiptRow.received_on, ReceiptRow.id)))
    received = sum((r.amount for r in receipts), ZERO)
    schedule = allocate(lines, received, today)
    return {
        "schedule": schedule,
        "receipts": [Receipt(id=r.id, amount=r.amount, received_on=r.received_on, ref=r.ref,
                             recorded_at=r.recorded_at) for r in receipts],
        "received": received, "balance": owed(deal, lines) - received,
        "next_due": next((line for line in schedule if line.outstanding > 0), None)
        if deal.state in ACTIVE_DEAL_STATES else None,
    }


class Payments:
    """``service(crm).payments``: schedules, receipts, receivables and reminders."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def _deal(self, session: Session, deal: int) -> DealRow:
        return load_deal(session, deal, active=True)

    def schedule(self, deal: int, plan: str | Path | Sequence[Mapping[str, Any]], *,
                 actor: Actor | None = None, now: dt.datetime | None = None
                 ) -> list[Instalment]:
        """Set the deal's schedule (replacing any before): a built-in plan, a TOML file,
        or lines. Lines other than the area adjustment must sum to the deal's total."""
        require_role(actor, OFFICE, "schedule payments")
        at = now or utcnow()
        today = local_date(self.crm, at)
        given: list[dict[str, Any]] | None = None
        if isinstance(plan, Path) or (isinstance(plan, str) and not built_in(plan)):
            given = file_lines(plan)
        elif not isinstance(plan, str):
            given = [{"kind": p["kind"], "due": p["due"],
                      "amount": amount(p["amount"], "amount",
                                       signed=p["kind"] == "area_adjustment")} for p in plan]
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = self._deal(session, deal)
            start = local_date(self.crm, row.signed_at or row.subscribed_at)
            lines = given if given is not None else plan_lines(
                str(plan), row, start, local_date(self.crm, row.subscribed_at))
            total = row.total if row.total is not None else row.amount
            summed = sum((line["amount"] for line in lines
                          if line["kind"] != "area_adjustment"), ZERO)
            if summed != total:
                raise Refused(f"the schedule sums to {summed}; deal {deal}'s total is {total}")
            for old in session.scalars(select(InstalmentRow).where(
                    InstalmentRow.deal_id == row.id)):
                session.delete(old)
            session.flush()
            for line in lines:
                session.add(InstalmentRow(deal_id=row.id, kind=line["kind"], due=line["due"],
                                          amount=line["amount"]))
            session.add(DealEventRow(deal_id=row.id, kind="schedule", at=at,
                                     staff=actor.staff_id if actor else None, reason=None,
                                     data={"plan": str(plan) if isinstance(plan, str | Path)
                                           else "lines", "lines": len(lines)}))
            session.flush()
            return schedule_of(session, row, today)["schedule"]  # type: ignore[no-any-return]

    def adjust_area(self, deal: int, final_area: Decimal | str, *, due: dt.date,
                    actor: Actor | None = None, now: dt.datetime | None = None
                    ) -> list[Instalment]:
        """补差: the unit's measured area is recorded and the difference from the
        contracted area, at the deal's price per ㎡, is added to the schedule (negative:
        a refund). A second measurement replaces the first adjustment."""
        require_role(actor, OFFICE, "adjust for the measured area")
        area = amount(final_area, "final_area", positive=True)
        entered_day(due, "due")
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = self._deal(session, deal)
            unit = session.get_one(UnitRow, row.unit_id, with_for_update=True)
            total = row.total if row.total is not None else row.amount
            per_m2 = total / unit.gross_area
            diff = ((area - unit.gross_area) * per_m2).quantize(CENT)
            unit.final_area, unit.updated_at = area, at
            for old in session.scalars(select(InstalmentRow).where(
                    InstalmentRow.deal_id == row.id, InstalmentRow.kind == "area_adjustment")):
                session.delete(old)
            if diff:
                session.add(InstalmentRow(deal_id=row.id, kind="area_adjustment", due=due,
                                          amount=diff))
            session.add(DealEventRow(deal_id=row.id, kind="area", at=at,
                                     staff=actor.staff_id if actor else None, reason=None,
                                     data={"final_area": str(area), "difference": str(diff)}))
            session.flush()
            return schedule_of(session, row, local_date(self.crm, at))["schedule"]  # type: ignore[no-any-return]

    def receive(self, deal: int, value: Decimal | str | int, *, date: dt.date,
                ref: str | None = None, actor: Actor | None = None,
                now: dt.datetime | None = None) -> Receipt:
        """Record money received; the same ``ref`` again returns the first receipt (a
        different amount under it is refused). More than the deal's balance is
        Refused (no overpayment)."""
        require_role(actor, OFFICE, "record payments")
        money = amount(value, "amount", positive=True)
        entered_day(date, "date")
        # a reference typed with full-width letters or pasted with a zero-width space
        # is the same reference, not a second receipt of the same money
        key = code_text(ref, "ref", "a reference") or f"auto-{uuid.uuid4().hex}"
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = self._deal(session, deal)  # locked: receipts of a deal one at a time
            found = session.scalars(select(ReceiptRow).where(
                ReceiptRow.deal_id == row.id, ReceiptRow.ref == key)).first()
            if found is None:  # the same reference again is the same receipt, not more
                lines = session.scalars(select(InstalmentRow).where(
                    InstalmentRow.deal_id == row.id)).all()
                received = session.scalar(select(func.sum(ReceiptRow.amount)).where(
                    ReceiptRow.deal_id == row.id)) or ZERO
                outstanding = owed(row, lines) - Decimal(received)
                if money > outstanding:
                    raise Refused(f"deal {deal} has {max(outstanding, ZERO)} outstanding; a "
                                  f"receipt of {money} is more than that")
            insert_or_ignore(session, ReceiptRow, {
                "deal_id": row.id, "amount": money, "received_on": date, "ref": key,
                "staff": actor.staff_id if actor else None, "recorded_at": at,
            }, on=[ReceiptRow.deal_id, ReceiptRow.ref])
            found = session.scalars(select(ReceiptRow).where(
                ReceiptRow.deal_id == row.id, ReceiptRow.ref == key)).one()
            if found.amount != money:
                raise Refused(f"reference {key} was recorded for {found.amount}, not {money}")
            return Receipt(id=found.id, amount=found.amount, received_on=found.received_on,
                           ref=found.ref, recorded_at=found.recorded_at)

    def receivables(self, *, project: str | None = None, overdue: bool = False,
                    customer: int | None = None, actor: Actor | None = None,
                    now: dt.datetime | None = None) -> list[Receivable]:
        """What is outstanding on active deals, earliest due first."""
        require_role(actor, READERS, "read receivables")
        if project:
            self.crm.projects.get(project)  # UnknownProject: "no such project"
        today = local_date(self.crm, now or utcnow())
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            return receivables_in(uow.session, today, project=project, overdue=overdue,
                                  customer=customer)

    def remind(self, *, days: int = 7, actor: Actor | None = None,
               now: dt.datetime | None = None) -> int:
        """Write ``sales.payment_due`` once for each outstanding line due within ``days``
        days (today included), when a webhook subscribes to it; the number of lines
        announced."""
        require_role(actor, OFFICE, "send payment reminders")
        if not 0 <= days <= 365:
            raise InvalidInput("days", "days is from 0 to 365")
        at = now or utcnow()
        today = local_date(self.crm, at)
        count = 0
        with self.crm.unit_of_work(actor) as uow:
            for item in receivables_in(uow.session, today, until=today + dt.timedelta(days)):
                line = uow.session.get_one(InstalmentRow, item.line, with_for_update=True)
                if line.reminded_at is not None or item.due < today:
                    continue
                sent = uow.crm.webhooks.emit(uow, EVENT, {
                    "deal_id": item.deal_id, "project": item.project, "unit": item.unit,
                    "kind": item.kind, "due": item.due.isoformat(),
                    "outstanding": str(item.outstanding)}, customer_id=item.customer_id)
                if sent is not None:  # no subscriber yet: announced when there is one
                    line.reminded_at = at
                    count += 1
        return count


def receivables_in(session: Session, today: dt.date, *, project: str | None = None,
                   overdue: bool = False, customer: int | None = None,
                   until: dt.date | None = None) -> list[Receivable]:
    deals = select(DealRow).where(DealRow.state.in_(ACTIVE_DEAL_STATES),
                                  DealRow.id.in_(select(InstalmentRow.deal_id)))
    if project:
        deals = deals.where(DealRow.project == project_code(project))
    if customer is not None:
        deals = deals.where(DealRow.customer_id == customer)
    rows = {d.id: d for d in session.scalars(deals)}
    if not rows:
        return []
    received = dict(session.execute(select(ReceiptRow.deal_id, func.sum(ReceiptRow.amount))
                                    .where(ReceiptRow.deal_id.in_(rows))
                                    .group_by(ReceiptRow.deal_id)).all())
    lines: dict[int, list[InstalmentRow]] = {}
    for line in session.scalars(select(InstalmentRow).where(InstalmentRow.deal_id.in_(rows))):
        lines.setdefault(line.deal_id, []).append(line)
    out: list[Receivable] = []
    for deal_id, deal in rows.items():
        name = name_of(session, session.get_one(UnitRow, deal.unit_id))
        paid = Decimal(received.get(deal_id) or 0)
        for item in allocate(lines.get(deal_id, []), paid, today):
            if item.outstanding <= 0 or (overdue and not item.overdue):
                continue
            if until is not None and item.due > until:
                continue
            out.append(Receivable(deal_id=deal_id, project=deal.project, unit=name,
                             customer_id=deal.customer_id, kind=item.kind, due=item.due,
                             amount=item.amount, outstanding=item.outstanding,
                             overdue=item.overdue, line=item.id))
    out.sort(key=lambda r: (r.due, r.deal_id))
    return out
