"""``/v1/sales/...``: units, holds, deals, payments, receivables and the report
(``recrm_api_routes``).

Imported only by the hook, when the API app is built. Thin endpoints over the same
services and pydantic models as the SDK and the CLI; amounts are exact decimal
strings. A unit in a path is its id or ``PROJECT/BUILDING-ROOM`` (url-encoded).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

from fastapi import Path, Query, status
from pydantic import BaseModel, Field, field_validator

from recrm_core.api import CurrentActor, JsonBody
from recrm_core.db import MAX_ID

from .models import CustomerRef, Deal, Hold, PartyIn, Receipt, Receivable, SalesReport, Ticket, Unit
from .money import Exact
from .payments import built_in
from .report import report
from .service import Sales

if TYPE_CHECKING:
    from recrm_core import CRM
    from recrm_core.api import ApiRoutes

#: a deal id in a path: the core's id range (422 outside it), as for the core's ids
DealId = Annotated[int, Path(ge=1, le=MAX_ID, description="deal id")]


class HoldIn(BaseModel):
    customer: CustomerRef = Field(description="customer id or mobile")
    staff: str | None = None


class SubscribeIn(BaseModel):
    unit: str = Field(description="unit id or PROJECT/BUILDING-ROOM")
    buyer: CustomerRef = Field(description="customer id or mobile")
    parties: list[PartyIn] = Field(default_factory=list)
    price: Exact | None = None
    discount: Exact = Decimal("0")
    deposit: Exact
    ticket: int | None = Field(default=None, ge=1, le=MAX_ID)


class SignIn(BaseModel):
    contract_no: str
    total: Exact
    payment: str = Field(description="full, mortgage or instalments")


class ReceiveIn(BaseModel):
    amount: Exact
    date: dt.date
    ref: str | None = Field(default=None, description="recorded once per deal")


class ScheduleIn(BaseModel):
    plan: str = Field(description="full, mortgage or instalments:N")

    @field_validator("plan")
    @classmethod
    def _built_in(cls, v: str) -> str:
        # A TOML plan is a file on the office's machine, for the command line: a
        # client naming a path would make the server read its own files.
        if not built_in(v):
            raise ValueError("a plan is full, mortgage or instalments:N (a TOML plan "
                             "file is for the command line)")
        return v


class ReasonIn(BaseModel):
    reason: str


class HandoverIn(BaseModel):
    date: dt.date | None = Field(default=None, description="default: today")


class ChangeUnitIn(BaseModel):
    unit: str
    reason: str
    price: Exact | None = None


class ChangeBuyerIn(BaseModel):
    buyer: CustomerRef = Field(description="the primary buyer after the change (id or mobile)")
    parties: list[PartyIn] = Field(default_factory=list)
    reason: str


class TicketIn(BaseModel):
    project: str
    customer: CustomerRef = Field(description="customer id or mobile")
    amount: Exact


class CallIn(BaseModel):
    project: str
    next: int = Field(ge=1, le=10_000)


def add_routes(crm: CRM, routes: ApiRoutes) -> None:
    sales = Sales(crm)
    api = routes.api

    @api.get("/units", response_model=list[Unit])
    def units(actor: CurrentActor, project: str | None = Query(default=None),
              building: str | None = Query(default=None),
              status: str | None = Query(default=None)) -> list[Unit]:
        """Units as of now (an expired hold reads as available)."""
        return sales.units.list(project=project, building=building, status=status,
                                actor=actor)

    @api.post("/units/{unit:path}/hold", response_model=Hold,
              status_code=status.HTTP_201_CREATED)
    def hold(unit: str, body: JsonBody[HoldIn], actor: CurrentActor) -> Hold:
        """Hold a unit for a customer (409 when it is taken)."""
        return sales.units.hold(unit, body.customer, staff=body.staff, actor=actor)

    @api.post("/units/{unit:path}/release", response_model=Hold)
    def release(unit: str, actor: CurrentActor) -> Hold:
        """Release a unit's hold."""
        return sales.units.release(unit, actor=actor)

    @api.post("/deals", response_model=Deal, status_code=status.HTTP_201_CREATED)
    def subscribe(body: JsonBody[SubscribeIn], actor: CurrentActor) -> Deal:
        """Subscribe a unit (认购) for a buyer and co-buyers."""
        return sales.deals.subscribe(body.unit, body.buyer, parties=body.parties,
                                     price=body.price, discount=body.discount,
                                     deposit=body.deposit, ticket=body.ticket, actor=actor)

    @api.get("/deals/{deal}", response_model=Deal)
    def show(deal: DealId, actor: CurrentActor) -> Deal:
        """A deal with its parties, history, schedule, receipts and balance."""
        return sales.deals.show(deal, actor=actor)

    @api.post("/deals/{deal}/sign", response_model=Deal)
    def sign(deal: DealId, body: JsonBody[SignIn], actor: CurrentActor) -> Deal:
        """Sign a subscribed deal (签约)."""
        return sales.deals.sign(deal, contract_no=body.contract_no, total=body.total,
                                payment=body.payment, actor=actor)

    @api.post("/deals/{deal}/cancel", response_model=Deal)
    def cancel(deal: DealId, body: JsonBody[ReasonIn], actor: CurrentActor) -> Deal:
        """Cancel a deal (退房; managers)."""
        return sales.deals.cancel(deal, reason=body.reason, actor=actor)

    @api.post("/deals/{deal}/handover", response_model=Deal)
    def handover(deal: DealId, body: JsonBody[HandoverIn], actor: CurrentActor) -> Deal:
        """Hand over a contracted deal's unit (交房)."""
        return sales.deals.handover(deal, date=body.date, actor=actor)

    @api.post("/deals/{deal}/change-unit", response_model=Deal)
    def change_unit(deal: DealId, body: JsonBody[ChangeUnitIn], actor: CurrentActor) -> Deal:
        """Move a deal to another unit (换房; managers)."""
        return sales.deals.change_unit(deal, body.unit, reason=body.reason, price=body.price,
                                       actor=actor)

    @api.post("/deals/{deal}/change-buyer", response_model=Deal)
    def change_buyer(deal: DealId, body: JsonBody[ChangeBuyerIn], actor: CurrentActor) -> Deal:
        """Change or add a deal's parties (更名; managers)."""
        return sales.deals.change_buyer(deal, body.buyer, parties=body.parties,
                                        reason=body.reason, actor=actor)

    @api.post("/tickets", response_model=Ticket, status_code=status.HTTP_201_CREATED)
    def issue_ticket(body: JsonBody[TicketIn], actor: CurrentActor) -> Ticket:
        """Issue the project's next ticket (认筹)."""
        return sales.tickets.issue(body.project, body.customer, body.amount, actor=actor)

    @api.post("/tickets/call", response_model=list[Ticket])
    def call_tickets(body: JsonBody[CallIn], actor: CurrentActor) -> list[Ticket]:
        """Call the next tickets in number order (开盘选房)."""
        return sales.tickets.call(body.project, body.next, actor=actor)

    @api.get("/tickets", response_model=list[Ticket])
    def tickets(actor: CurrentActor, project: str | None = Query(default=None),
                state: str | None = Query(default=None)) -> list[Ticket]:
        """Tickets by project and number."""
        return sales.tickets.list(project=project, state=state, actor=actor)

    @api.post("/deals/{deal}/schedule", response_model=Deal)
    def schedule(deal: DealId, body: JsonBody[ScheduleIn], actor: CurrentActor) -> Deal:
        """Set the deal's payment schedule from a built-in plan."""
        sales.payments.schedule(deal, body.plan, actor=actor)
        return sales.deals.show(deal, actor=actor)

    @api.post("/deals/{deal}/receipts", response_model=Receipt,
              status_code=status.HTTP_201_CREATED)
    def receive(deal: DealId, body: JsonBody[ReceiveIn], actor: CurrentActor) -> Receipt:
        """Record money received (the same `ref` again returns the first receipt)."""
        return sales.payments.receive(deal, body.amount, date=body.date, ref=body.ref,
                                      actor=actor)

    @api.get("/receivables", response_model=list[Receivable])
    def receivables(actor: CurrentActor, project: str | None = Query(default=None),
                    overdue: bool = Query(default=False)) -> list[Receivable]:
        """What is outstanding, earliest due first."""
        return sales.payments.receivables(project=project, overdue=overdue, actor=actor)

    @api.get("/report", response_model=SalesReport)
    def sales_report(actor: CurrentActor,
                     project: str | None = Query(default=None)) -> SalesReport:
        """Units by state per building, sell-through, amounts and receivables."""
        return report(crm, project=project, actor=actor)
