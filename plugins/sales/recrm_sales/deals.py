"""Deals: subscription (认购), contract (签约), handover (交房) with co-buyers, and the
changes after the fact — cancellation (退房), change of unit (换房), change of buyer
(更名) — each an explicit operation with a reason, recorded in the deal's history.

Each step moves every party's stage at the project through the core's public API
(``crm.customers.set_stage_in``, inside the deal's unit of work, so every plugin sees
it through ``recrm_stage_changed``). The deal's amount is carried once, on the primary
buyer's step, in whole yuan (rounded half up; the exact amount lives here). A
cancellation recomputes each party's stage at the project from the deals they still
hold there, forced back only when none holds it up, never below ``visitor``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    InvalidInput,
    NotFound,
    Refused,
    UnitOfWork,
    require_role,
    utcnow,
    valid_id,
)
from recrm_core.contention import retrying
from recrm_core.values import STAGE_RANK, check_storable

from .inventory import expire_stale, refuse_taken
from .models import Deal, DealEvent, Party, PartyIn
from .money import ZERO, amount, whole_yuan
from .refs import (
    MANAGERS,
    OFFICE,
    READERS,
    check_staff,
    code_text,
    customer_id,
    entered_day,
    find_unit,
    local_date,
    name_of,
    parse_unit,
)
from .settings import settings
from .tables import (
    ACTIVE_DEAL_STATES,
    DealEventRow,
    DealRow,
    PartyRow,
    ReceiptRow,
    TicketRow,
    UnitRow,
)
from .tickets import convert_in

#: the core stage each deal state holds its parties at
STAGE_OF = {"subscribed": "subscriber", "contracted": "buyer", "handed_over": "owner"}
#: the lowest stage a cancellation moves a party back to
FLOOR = "visitor"
PAYMENTS = ("full", "mortgage", "instalments")
#: the reference of the receipt a subscription records for its deposit (定金), paid then
DEPOSIT_REF = "deposit"
HUNDRED = Decimal("100.00")


def parse_party(text: str) -> PartyIn:
    """``CUSTOMER:ROLE:SHARE`` (``13800000001:spouse:50``) as a :class:`PartyIn`."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3:
        raise InvalidInput("party", f"{text[:60]!r}: give CUSTOMER:ROLE:SHARE "
                           "(e.g. 13800000001:spouse:50)")
    who, role, share = (p.strip() for p in parts)
    if role not in ("buyer", "co_owner", "spouse"):
        raise InvalidInput("party", f"{role[:20]!r}: a role is buyer, co_owner or spouse")
    try:
        value = amount(share, "share", positive=True)
    except InvalidInput as exc:  # named by the option it was given in
        raise InvalidInput("party", exc.reason) from None
    if value >= HUNDRED:
        raise InvalidInput("party", "a co-buyer's share is below 100 (the buyer holds the rest)")
    return PartyIn(customer=who, role=role, share=value)


def resolve_parties(crm: CRM, buyer: str | int, parties: Sequence[PartyIn | str],
                    actor: Actor | None) -> list[tuple[int, str, Decimal]]:
    """``[(customer id, role, share)]``, the buyer first with the rest of 100; Refused
    when the shares leave the buyer nothing or a customer is named twice."""
    given = [parse_party(p) if isinstance(p, str) else p for p in parties]
    total = sum((amount(p.share, "share", positive=True) for p in given), ZERO)
    if total >= HUNDRED:
        raise Refused(f"the co-buyers' shares sum to {total}%, leaving the buyer nothing: "
                      "the shares of all parties must sum to 100")
    resolved = [(customer_id(crm, buyer, actor, "buyer"), "buyer", HUNDRED - total)]
    for p in given:
        resolved.append((customer_id(crm, p.customer, actor, "party"), p.role,
                         amount(p.share, "share", positive=True)))
    ids = [cid for cid, _, _ in resolved]
    if len(set(ids)) != len(ids):
        raise Refused("a customer is named twice among the deal's parties")
    return resolved


def locked_parties(uow: UnitOfWork, resolved: Sequence[tuple[int, str, Decimal]]
                   ) -> list[tuple[int, str, Decimal]]:
    """``resolve_parties``' parties resolved again inside the deal's write, each
    customer locked against a merge (in id order, as a merge locks): a merge since
    ``resolve_parties`` moves the deal to the survivor, and one running waits for it."""
    survivors = {cid: uow.crm.customers.resolve_for_write_in(uow, cid)
                 for cid in sorted({cid for cid, _, _ in resolved})}
    return [(survivors[cid], role, share) for cid, role, share in resolved]


def _event(session: Session, deal: DealRow, kind: str, at: dt.datetime, staff: str | None,
           reason: str | None = None, **data: Any) -> None:
    session.add(DealEventRow(deal_id=deal.id, kind=kind, at=at, staff=staff,
                             reason=(reason or None) and reason[:500], data=data))


def _reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise InvalidInput("reason", "give the reason for the change")
    if len(text) > 500:
        raise InvalidInput("reason", "a reason has at most 500 characters")
    try:
        check_storable(text)
    except ValueError as exc:
        raise InvalidInput("reason", f"the reason {exc}") from None
    return text


def stage_at(uow: UnitOfWork, cid: int, project: str) -> str | None:
    """The customer's core stage at the project (None: not linked)."""
    customer = uow.crm.customers.get_in(uow, cid)
    return next((link.stage for link in customer.projects if link.project == project), None)


def add_party(uow: UnitOfWork, deal: DealRow, cid: int, role: str, share: Decimal,
              primary: bool, at: dt.datetime) -> None:
    uow.session.add(PartyRow(deal_id=deal.id, customer_id=cid, role=role, share=share,
                             primary=primary, added_at=at,
                             prior_stage=stage_at(uow, cid, deal.project)))


def current_parties(session: Session, deal_id: int) -> list[PartyRow]:
    return list(session.scalars(select(PartyRow).where(
        PartyRow.deal_id == deal_id, PartyRow.removed_at.is_(None))
        .order_by(PartyRow.primary.desc(), PartyRow.id)))


def move_parties(uow: UnitOfWork, deal: DealRow, unit: str, stage: str,
                 at: dt.datetime, carried: Decimal | None,
                 only: Sequence[int] | None = None) -> None:
    """Every current party's stage at the project moves to ``stage`` with the unit;
    ``carried`` (the deal's amount) on the primary buyer's step only."""
    for party in current_parties(uow.session, deal.id):
        if party.customer_id is None or (only is not None and party.customer_id not in only):
            continue
        money = whole_yuan(carried) if carried is not None and party.primary else None
        uow.crm.customers.set_stage_in(uow, party.customer_id, stage, deal.project,
                                       unit=unit, amount=money, occurred_at=at)


def held_stage(session: Session, cid: int, project: str) -> str:
    """The furthest stage ``cid`` is held at ``project`` by the deals they are still a
    party to, or by what they had before their first deal here (a stage reached
    without this plugin), never below the floor."""
    rows = session.execute(select(DealRow.state, PartyRow.removed_at, PartyRow.prior_stage)
                           .join(PartyRow, PartyRow.deal_id == DealRow.id).where(
        PartyRow.customer_id == cid, DealRow.project == project)).all()
    held = [STAGE_OF[state] for state, removed, _ in rows
            if removed is None and state in ACTIVE_DEAL_STATES]
    priors = [prior or FLOOR for _, _, prior in rows]
    if priors:  # the stage before any deal of theirs here
        held.append(min(priors, key=STAGE_RANK.__getitem__))
    return max([*held, FLOOR], key=STAGE_RANK.__getitem__)


def recompute(uow: UnitOfWork, cid: int, project: str, at: dt.datetime) -> None:
    """Move ``cid`` back at ``project`` (forced) to what their remaining deals hold, when
    their stage there is further; never below ``visitor``."""
    target = held_stage(uow.session, cid, project)
    now_at = stage_at(uow, cid, project)
    if now_at is not None and STAGE_RANK[now_at] > STAGE_RANK[target]:
        uow.crm.customers.set_stage_in(uow, cid, target, project, force=True,
                                       occurred_at=at)


def deal_model(session: Session, row: DealRow, today: dt.date, *,
               full: bool = True, unit: str | None = None) -> Deal:
    """The deal; ``full`` adds its history, schedule, receipts and balance (a step's
    result leaves them out: ``show`` has them)."""
    from .payments import schedule_of

    parties = [Party(customer_id=p.customer_id, role=p.role,
                     share=p.share, primary=p.primary, added_at=p.added_at,
                     removed_at=p.removed_at)
               for p in session.scalars(select(PartyRow).where(PartyRow.deal_id == row.id)
                                        .order_by(PartyRow.id))]
    ticket = session.scalar(select(TicketRow.number).where(TicketRow.id == row.ticket_id)) \
        if row.ticket_id else None
    extra: dict[str, Any] = {}
    if full:
        extra["history"] = [
            DealEvent(kind=e.kind, at=e.at, staff=e.staff, reason=e.reason, data=e.data)
            for e in session.scalars(select(DealEventRow).where(
                DealEventRow.deal_id == row.id).order_by(DealEventRow.id))]
        extra.update(schedule_of(session, row, today))
    return Deal(
        id=row.id, unit=unit or name_of(session, session.get_one(UnitRow, row.unit_id)),
        unit_id=row.unit_id, project=row.project,
        customer_id=row.customer_id, state=row.state,
        price=row.price, discount=row.discount, amount=row.amount, deposit=row.deposit,
        ticket=ticket, subscribed_at=row.subscribed_at, sign_by=row.sign_by,
        sign_overdue=row.state == "subscribed" and today > row.sign_by,
        contract_no=row.contract_no, total=row.total, payment=row.payment,
        signed_at=row.signed_at, handed_over_on=row.handed_over_on,
        cancelled_at=row.cancelled_at, parties=parties, **extra)


def load_deal(session: Session, deal: int, *, lock: bool = True,
              active: bool = False) -> DealRow:
    """The deal, locked for update when ``lock``; NotFound if none, and with ``active``
    Refused unless it is subscribed, contracted or handed over."""
    row = session.get(DealRow, deal, with_for_update=lock or None) if valid_id(deal) else None
    if row is None:
        raise NotFound(f"no deal {deal}")
    if active and row.state not in ACTIVE_DEAL_STATES:
        raise Refused(f"deal {deal} is {row.state}")
    return row


class Deals:
    """``service(crm).deals``: subscribe, sign, hand over, cancel, change unit or buyer."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def _today(self, at: dt.datetime) -> dt.date:
        return local_date(self.crm, at)

    def _load(self, session: Session, deal: int, *, lock: bool = True) -> DealRow:
        return load_deal(session, deal, lock=lock)

    def subscribe(self, unit: str | int, buyer: str | int, *,
                  parties: Sequence[PartyIn | str] = (), price: Decimal | str | None = None,
                  discount: Decimal | str | int = 0, deposit: Decimal | str | int,
                  ticket: int | None = None, staff: str | None = None,
                  actor: Actor | None = None, now: dt.datetime | None = None) -> Deal:
        """A subscription (认购) of ``unit`` by ``buyer`` and co-buyers (``parties``),
        at ``price`` (default: the list price) less ``discount``, with ``deposit`` paid.
        The unit must be available, or held for one of the parties (the hold is
        converted); with ``ticket``, a called ticket of the buyer's is converted."""
        require_role(actor, OFFICE, "subscribe units")
        parse_unit(str(unit))
        resolved = resolve_parties(self.crm, buyer, parties, actor)
        off = amount(discount, "discount")
        paid = amount(deposit, "deposit", positive=True)
        asked = amount(price, "price", positive=True) if price is not None else None
        at = now or utcnow()
        days = settings(self.crm).sign_within_days

        def attempt() -> Deal:
            with self.crm.unit_of_work(actor) as uow:
                session = uow.session
                locked = locked_parties(uow, resolved)
                row = find_unit(session, unit, lock=True)
                expire_stale(session, row, at)
                # the buyer's or a co-buyer's own hold is converted
                hold = refuse_taken(session, row, at, {cid for cid, _, _ in locked},
                                    zone=self.crm.config.zone)
                listed = asked if asked is not None else row.list_price
                if off >= listed:
                    raise InvalidInput("discount", "the discount is the whole price or more")
                total = listed - off
                if paid > total:
                    raise InvalidInput("deposit", "the deposit is more than the price")
                deal = DealRow(
                    unit_id=row.id, project=row.project, customer_id=locked[0][0],
                    staff=check_staff(uow, staff), state="subscribed", price=listed,
                    discount=off, amount=total, deposit=paid, subscribed_at=at,
                    sign_by=self._today(at) + dt.timedelta(days=days))
                session.add(deal)
                session.flush()
                for i, (cid, role, share) in enumerate(locked):
                    add_party(uow, deal, cid, role, share, i == 0, at)
                # the deposit is paid at subscription: it is received money from then on
                session.add(ReceiptRow(deal_id=deal.id, amount=paid,
                                       received_on=self._today(at), ref=DEPOSIT_REF,
                                       staff=deal.staff, recorded_at=at))
                if hold is not None:
                    hold.state, hold.ended_at = "converted", at
                if ticket is not None:
                    deal.ticket_id = convert_in(session, row.project, ticket,
                                                locked[0][0], deal.id, at).id
                row.status, row.updated_at = "subscribed", at
                name = name_of(session, row)
                _event(session, deal, "subscribe", at, deal.staff, unit=name,
                       amount=str(total), deposit=str(paid),
                       parties=[[cid, role, str(share)] for cid, role, share in locked])
                session.flush()
                move_parties(uow, deal, name, "subscriber", at, total)
                return deal_model(session, deal, self._today(at), full=False, unit=name)

        return retrying(attempt)

    def sign(self, deal: int, *, contract_no: str, total: Decimal | str | int,
             payment: str, actor: Actor | None = None,
             now: dt.datetime | None = None) -> Deal:
        """The contract (签约) of a subscribed deal."""
        require_role(actor, OFFICE, "sign contracts")
        # cleaned as a code: "ＨＴ-1" or a pasted zero-width space is contract HT-1, not a
        # second contract of that number
        number = code_text(contract_no, "contract_no", "a contract number")
        if not number:
            raise InvalidInput("contract_no", "a contract number is 1 to 64 characters")
        value = amount(total, "total", positive=True)
        if payment not in PAYMENTS:
            raise InvalidInput("payment", f"payment is one of {', '.join(PAYMENTS)}")
        at = now or utcnow()

        # Retried when another office signed a deal with this number meanwhile (the
        # unique index refuses our write): the check then names that deal.
        def attempt() -> Deal:
            with self.crm.unit_of_work(actor) as uow:
                session = uow.session
                row = self._load(session, deal)
                if row.state != "subscribed":
                    raise Refused(f"deal {deal} is {row.state}, not subscribed")
                taken = session.scalar(select(DealRow.id).where(
                    DealRow.project == row.project, DealRow.contract_no == number,
                    DealRow.id != row.id))
                if taken is not None:
                    raise Refused(f"contract {number} is deal {taken}'s")
                unit = session.get_one(UnitRow, row.unit_id, with_for_update=True)
                row.state, row.contract_no, row.total, row.payment, row.signed_at = (
                    "contracted", number, value, payment, at)
                unit.status, unit.updated_at = "contracted", at
                name = name_of(session, unit)
                _event(session, row, "sign", at, check_staff(uow, None), contract_no=number,
                       total=str(value), payment=payment)
                session.flush()
                move_parties(uow, row, name, "buyer", at, value)
                uow.crm.webhooks.emit(uow, "sales.contract_signed", {
                    "deal_id": row.id, "project": row.project, "unit": name,
                    "contract_no": number, "total": str(value)}, customer_id=row.customer_id)
                return deal_model(session, row, self._today(at), full=False, unit=name)

        return retrying(attempt)

    def handover(self, deal: int, *, date: dt.date | None = None,
                 actor: Actor | None = None, now: dt.datetime | None = None) -> Deal:
        """The handover (交房) of a contracted deal's unit."""
        require_role(actor, OFFICE, "hand over units")
        at = now or utcnow()
        day = entered_day(date, "date") if date is not None else self._today(at)
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = self._load(session, deal)
            if row.state != "contracted":
                raise Refused(f"deal {deal} is {row.state}, not contracted")
            unit = session.get_one(UnitRow, row.unit_id, with_for_update=True)
            row.state, row.handed_over_on = "handed_over", day
            unit.status, unit.updated_at = "handed_over", at
            name = name_of(session, unit)
            _event(session, row, "handover", at, check_staff(uow, None), date=day.isoformat())
            session.flush()
            when = dt.datetime.combine(day, dt.time(12), self.crm.config.zone)
            move_parties(uow, row, name, "owner", min(when, at), None)
            return deal_model(session, row, self._today(at), full=False, unit=name)

    def show(self, deal: int, *, actor: Actor | None = None,
             now: dt.datetime | None = None) -> Deal:
        require_role(actor, READERS, "read deals")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            return deal_model(uow.session, self._load(uow.session, deal, lock=False),
                              self._today(now or utcnow()))

    def list(self, *, project: str | None = None, customer: int | None = None,
             state: str | None = None, actor: Actor | None = None,
             now: dt.datetime | None = None) -> list[Deal]:
        require_role(actor, READERS, "list deals")
        if project:
            self.crm.projects.get(project)  # UnknownProject: "no such project"
        today = self._today(now or utcnow())
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(DealRow).order_by(DealRow.id)
            if project:
                from recrm_core import project_code

                query = query.where(DealRow.project == project_code(project))
            if state:
                query = query.where(DealRow.state == state)
            if customer is not None:
                query = query.where(DealRow.id.in_(select(PartyRow.deal_id).where(
                    PartyRow.customer_id == customer)))
            return [deal_model(uow.session, r, today, full=False)
                    for r in uow.session.scalars(query)]

    # -- changes after the fact (managers) -------------------------------------------------
    def cancel(self, deal: int, *, reason: str, actor: Actor | None = None,
               now: dt.datetime | None = None) -> Deal:
        """退房: the deal is cancelled, the unit available again, each party's stage at
        the project recomputed (a forced move back: the channels plugin claws back)."""
        require_role(actor, MANAGERS, "cancel deals")
        why = _reason(reason)
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = load_deal(session, deal, active=True)
            unit = session.get_one(UnitRow, row.unit_id, with_for_update=True)
            was = row.state
            row.state, row.cancelled_at = "cancelled", at
            unit.status, unit.updated_at = "available", at
            _event(session, row, "cancel", at, check_staff(uow, None), why, was=was,
                   unit=name_of(session, unit))
            session.flush()
            for party in current_parties(session, row.id):
                if party.customer_id is not None:
                    recompute(uow, party.customer_id, row.project, at)
            uow.crm.audit.record(uow, "sales.cancel", customer_id=row.customer_id,
                                 reason=why, details={"deal": row.id, "was": was})
            return deal_model(session, row, self._today(at))

    def change_unit(self, deal: int, unit: str | int, *, reason: str,
                    price: Decimal | str | None = None, actor: Actor | None = None,
                    now: dt.datetime | None = None) -> Deal:
        """换房: the deal moves to another unit (available, or held for a party); the old
        one becomes available. The price stays unless ``price`` is given."""
        require_role(actor, MANAGERS, "change a deal's unit")
        why = _reason(reason)
        asked = amount(price, "price", positive=True) if price is not None else None
        at = now or utcnow()

        def attempt() -> Deal:
            with self.crm.unit_of_work(actor) as uow:
                session = uow.session
                row = self._load(session, deal)
                if row.state not in ACTIVE_DEAL_STATES or row.state == "handed_over":
                    raise Refused(f"deal {deal} is {row.state}; only a subscribed or "
                                  "contracted deal changes unit")
                target = find_unit(session, unit)
                if target.id == row.unit_id:
                    raise Refused(f"deal {deal} is on that unit already")
                if target.project != row.project:
                    raise Refused("a deal changes unit within its project only")
                # both units locked, lower id first (two changes never deadlock)
                first, second = sorted((row.unit_id, target.id))
                locked = {u: session.get_one(UnitRow, u, with_for_update=True)
                          for u in (first, second)}
                old, new = locked[row.unit_id], locked[target.id]
                expire_stale(session, new, at)
                hold = refuse_taken(session, new, at,
                                    {p.customer_id for p in current_parties(session, row.id)},
                                    zone=self.crm.config.zone)
                if hold is not None:
                    hold.state, hold.ended_at = "converted", at
                was = name_of(session, old)
                old.status, old.updated_at = "available", at
                session.flush()
                row.unit_id = new.id
                new.status, new.updated_at = row.state, at
                if asked is not None:
                    if row.discount >= asked:
                        raise InvalidInput("price", "the price is not above the discount")
                    row.price, row.amount = asked, asked - row.discount
                _event(session, row, "change_unit", at, check_staff(uow, None), why,
                       old=was, new=name_of(session, new), amount=str(row.amount))
                session.flush()
                uow.crm.audit.record(uow, "sales.change_unit", customer_id=row.customer_id,
                                     reason=why, details={"deal": row.id})
                return deal_model(session, row, self._today(at))

        return retrying(attempt)

    def change_buyer(self, deal: int, buyer: str | int, *,
                     parties: Sequence[PartyIn | str] = (), reason: str,
                     actor: Actor | None = None, now: dt.datetime | None = None) -> Deal:
        """更名: the deal's parties become ``buyer`` and ``parties`` (a change or an
        addition). A new party's stage moves to the deal's; a removed one's is
        recomputed as on a cancellation."""
        require_role(actor, MANAGERS, "change a deal's buyers")
        why = _reason(reason)
        resolved = resolve_parties(self.crm, buyer, parties, actor)
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            resolved = locked_parties(uow, resolved)
            row = load_deal(session, deal, active=True)
            before = current_parties(session, row.id)
            old_ids = {p.customer_id for p in before}
            for p in before:
                p.removed_at = at
            session.flush()
            for i, (cid, role, share) in enumerate(resolved):
                add_party(uow, row, cid, role, share, i == 0, at)
            row.customer_id = resolved[0][0]
            unit = session.get_one(UnitRow, row.unit_id)
            name = name_of(session, unit)
            _event(session, row, "change_buyer", at, check_staff(uow, None), why,
                   before=[[p.customer_id, p.role, str(p.share)] for p in before],
                   after=[[cid, role, str(share)] for cid, role, share in resolved])
            session.flush()
            added = [cid for cid, _, _ in resolved if cid not in old_ids]
            for stage in ("subscriber", "buyer", "owner"):
                move_parties(uow, row, name, stage, at, None, only=added)
                if stage == STAGE_OF[row.state]:
                    break
            for gone in old_ids - {c for c, _, _ in resolved}:
                if gone is not None:
                    recompute(uow, gone, row.project, at)
            uow.crm.audit.record(uow, "sales.change_buyer", customer_id=row.customer_id,
                                 reason=why, details={"deal": row.id})
            return deal_model(session, row, self._today(at))
