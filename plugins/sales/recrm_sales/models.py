"""Pydantic models: what the sales service takes and returns (ORM rows stay inside).

Money and areas are :class:`~decimal.Decimal` with two places; JSON shows them as
exact decimal strings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from recrm_core import RejectedRow

from .money import Exact

UnitState = Literal["withheld", "available", "held", "subscribed", "contracted",
                    "handed_over"]
DealState = Literal["subscribed", "contracted", "handed_over", "cancelled"]
PartyRole = Literal["buyer", "co_owner", "spouse"]
PaymentKind = Literal["deposit", "down_payment", "mortgage", "instalment",
                      "area_adjustment"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Unit(_Out):
    id: int
    name: str = Field(description="PROJECT/BUILDING-ROOM, e.g. XL2/3-1201")
    project: str
    building: str
    entrance: str | None = None
    floor: int
    room: str
    gross_area: Decimal = Field(description="建筑面积, ㎡")
    net_area: Decimal | None = Field(default=None, description="套内面积, ㎡")
    final_area: Decimal | None = Field(default=None, description="实测面积, ㎡")
    layout: str | None = Field(default=None, description="户型, e.g. 3室2厅2卫")
    orientation: str | None = None
    list_price: Decimal = Field(description="CNY")
    price_per_m2: Decimal = Field(description="CNY per ㎡ of gross area")
    status: UnitState = Field(description="as of now: an expired hold reads as available")
    hold_customer_id: int | None = Field(default=None, description="the holder (held)")
    hold_staff: str | None = None
    hold_expires_at: dt.datetime | None = None
    deal_id: int | None = Field(default=None, description="the active deal, if any")


class ImportOutcome(_Out):
    rows: int
    created: int
    updated: int
    rejected: int
    errors_path: str | None = None
    rejections: list[RejectedRow] = Field(
        default_factory=list, description="each rejected row: row number, field, reason")


class Hold(_Out):
    id: int
    unit: str
    unit_id: int
    customer_id: int | None
    staff: str | None
    state: Literal["active", "released", "expired", "converted"]
    held_at: dt.datetime
    expires_at: dt.datetime
    ended_at: dt.datetime | None = None


class Ticket(_Out):
    id: int
    project: str
    number: int = Field(description="the project's sequence, gapless")
    customer_id: int | None
    amount: Decimal
    state: Literal["issued", "called", "converted", "refunded"]
    issued_at: dt.datetime
    called_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    deal_id: int | None = None


def _id_as_text(value: Any) -> Any:
    """A customer id sent as a JSON number (as the core's routes take it) is that id:
    refused as "not a valid string", it was the first thing an integrator tripped on."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: a customer named by id (a JSON number or text) or by mobile
CustomerRef = Annotated[str, BeforeValidator(_id_as_text)]


class PartyIn(BaseModel):
    """A co-buyer as given: a customer (id or mobile), a role and a share in percent."""

    customer: CustomerRef = Field(description="customer id, or a mobile resolved by the core")
    role: PartyRole = "co_owner"
    share: Exact = Field(gt=0, lt=100)


class Party(_Out):
    customer_id: int | None
    role: PartyRole
    share: Decimal
    primary: bool
    added_at: dt.datetime
    removed_at: dt.datetime | None = None


class DealEvent(_Out):
    kind: str
    at: dt.datetime
    staff: str | None
    reason: str | None
    data: dict[str, object]


class Instalment(_Out):
    id: int
    kind: PaymentKind
    due: dt.date
    amount: Decimal
    paid: Decimal = Field(description="received so far, allocated oldest due first")
    outstanding: Decimal
    overdue: bool


class Receipt(_Out):
    id: int
    amount: Decimal
    received_on: dt.date
    ref: str
    recorded_at: dt.datetime


class Deal(_Out):
    id: int
    unit: str
    unit_id: int
    project: str
    customer_id: int | None = Field(description="the primary buyer")
    state: DealState
    price: Decimal
    discount: Decimal
    amount: Decimal = Field(description="price less discount")
    deposit: Decimal
    ticket: int | None = Field(default=None, description="the ticket number converted")
    subscribed_at: dt.datetime
    sign_by: dt.date
    sign_overdue: bool = Field(description="subscribed, not signed, past sign_by")
    contract_no: str | None = None
    total: Decimal | None = None
    payment: str | None = None
    signed_at: dt.datetime | None = None
    handed_over_on: dt.date | None = None
    cancelled_at: dt.datetime | None = None
    parties: list[Party]
    history: list[DealEvent] = Field(default_factory=list)
    schedule: list[Instalment] = Field(default_factory=list)
    receipts: list[Receipt] = Field(default_factory=list)
    received: Decimal = Decimal("0.00")
    balance: Decimal = Field(default=Decimal("0.00"),
                             description="the total (and any area adjustment) less "
                                         "received, with or without a schedule")
    next_due: Instalment | None = Field(default=None,
                                        description="the next line with money outstanding")


class Receivable(_Out):
    line: int = Field(description="the schedule line's id")
    deal_id: int
    project: str
    unit: str
    customer_id: int | None
    kind: PaymentKind
    due: dt.date
    amount: Decimal
    outstanding: Decimal
    overdue: bool


class BuildingLine(_Out):
    project: str
    building: str
    units: int
    states: dict[str, int]


class SalesReport(_Out):
    project: str | None
    buildings: list[BuildingLine]
    units: int
    for_sale: int = Field(description="units not withheld")
    sold: int = Field(description="subscribed, contracted or handed over")
    sell_through_percent: Decimal
    deal_amount: Decimal = Field(description="active deals' contract totals (or amounts)")
    average_price_per_m2: Decimal | None
    signing_overdue: int
    receivables_due: Decimal = Field(description="outstanding, due today or later")
    receivables_overdue: Decimal
