"""Tickets (认筹): refundable deposits of intent (诚意金), numbered per project.

A number comes from the project's row in ``sales_ticket_sequences``, locked for the
issuing transaction: numbers are unique (a unique constraint) and gapless (a rolled
back issue gives its number back). Opening day (开盘选房) calls the next tickets in
number order; only a called ticket's holder subscribes with it, which converts it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    InvalidInput,
    NotFound,
    Refused,
    UnitOfWork,
    insert_or_ignore,
    project_code,
    require_role,
    utcnow,
    valid_id,
)
from recrm_core.contention import retrying

from .models import Ticket
from .money import amount as money
from .refs import OFFICE, READERS, customer_id
from .tables import TicketRow, TicketSequenceRow


def ticket_model(row: TicketRow) -> Ticket:
    return Ticket(id=row.id, project=row.project, number=row.number,
                  customer_id=row.customer_id, amount=row.amount,
                  state=row.state,
                  issued_at=row.issued_at, called_at=row.called_at, ended_at=row.ended_at,
                  deal_id=row.deal_id)


def find_ticket(session: Session, number: int, project: str | None,
                *, lock: bool = False) -> TicketRow:
    query = select(TicketRow).where(TicketRow.number == number)
    if project:
        query = query.where(TicketRow.project == project_code(project))
    rows = session.scalars(query.with_for_update() if lock else query).all() \
        if valid_id(number) else []
    if not rows:
        raise NotFound(f"no ticket {number}" + (f" at {project_code(project)}" if project
                                               else ""))
    if len(rows) > 1:
        raise InvalidInput("project", f"ticket {number} exists at "
                           f"{', '.join(sorted(r.project for r in rows))}: give --project")
    return rows[0]


class Tickets:
    """``service(crm).tickets``: issue, call, refund."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def issue(self, project: str, customer: str | int, amount: Decimal | str | int, *,
              actor: Actor | None = None, now: dt.datetime | None = None) -> Ticket:
        """The project's next ticket for the customer."""
        require_role(actor, OFFICE, "issue tickets")
        code = project_code(project)
        self.crm.projects.get(code)
        value = money(amount, "amount", positive=True)
        cid = customer_id(self.crm, customer, actor)
        at = now or utcnow()

        def attempt() -> Ticket:
            with self.crm.unit_of_work(actor) as uow:
                return ticket_model(self._issue_in(uow, code, cid, value, at))

        return retrying(attempt)

    def _issue_in(self, uow: UnitOfWork, code: str, cid: int, value: Decimal,
                  at: dt.datetime) -> TicketRow:
        session = uow.session
        cid = uow.crm.customers.resolve_for_write_in(uow, cid)  # as hold_in resolves it
        insert_or_ignore(session, TicketSequenceRow, {"project": code, "last": 0},
                         on=[TicketSequenceRow.project])
        seq = session.get_one(TicketSequenceRow, code, with_for_update=True)
        seq.last += 1
        row = TicketRow(project=code, number=seq.last, customer_id=cid, amount=value,
                        state="issued", issued_at=at)
        session.add(row)
        session.flush()
        return row

    def call(self, project: str, count: int, *, actor: Actor | None = None,
             now: dt.datetime | None = None) -> list[Ticket]:
        """Call the next ``count`` issued tickets in number order (开盘选房)."""
        require_role(actor, OFFICE, "call tickets")
        if count < 1:
            raise InvalidInput("next", "call at least one ticket")
        code = project_code(project)
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            rows = uow.session.scalars(
                select(TicketRow).where(TicketRow.project == code, TicketRow.state == "issued")
                .order_by(TicketRow.number).limit(count).with_for_update()).all()
            for row in rows:
                row.state, row.called_at = "called", at
            uow.session.flush()
            return [ticket_model(r) for r in rows]

    def refund(self, number: int, *, project: str | None = None,
               actor: Actor | None = None, now: dt.datetime | None = None) -> Ticket:
        """Refund a ticket not converted into a deal."""
        require_role(actor, OFFICE, "refund tickets")
        with self.crm.unit_of_work(actor) as uow:
            row = find_ticket(uow.session, number, project, lock=True)
            if row.state in ("converted", "refunded"):
                raise Refused(f"ticket {row.number} at {row.project} is {row.state}")
            row.state, row.ended_at = "refunded", now or utcnow()
            uow.session.flush()
            return ticket_model(row)

    def list(self, *, project: str | None = None, state: str | None = None,
             actor: Actor | None = None) -> list[Ticket]:
        require_role(actor, READERS, "list tickets")
        if project:
            self.crm.projects.get(project)  # UnknownProject: "no such project"
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(TicketRow).order_by(TicketRow.project, TicketRow.number)
            if project:
                query = query.where(TicketRow.project == project_code(project))
            if state:
                query = query.where(TicketRow.state == state)
            return [ticket_model(r) for r in uow.session.scalars(query)]


def convert_in(session: Session, project: str, number: int, buyer: int,
               deal_id: int, now: dt.datetime) -> TicketRow:
    """Convert a called ticket of the buyer's into the deal; Refused otherwise."""
    row = find_ticket(session, number, project, lock=True)
    if row.state != "called":
        raise Refused(f"ticket {number} at {project} is {row.state}, not called")
    if row.customer_id != buyer:
        raise Refused(f"ticket {number} at {project} belongs to another customer")
    row.state, row.ended_at, row.deal_id = "converted", now, deal_id
    session.flush()
    return row
