"""The plugin's tables, declared on ``recrm_core.Base`` and prefixed ``sales_``.

Money and areas are ``Numeric(14, 2)`` (exact decimals). A unit holds its stored
status; an active hold past its ``expires_at`` reads as released on every read and is
written as ``expired`` under the unit's row lock before the next hold. Two partial
unique indexes keep one active hold and one active deal per unit, whoever writes.
Rows refer to customers by id only: no name, mobile or ID number is copied here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from recrm_core import Base, UTCDateTime

#: the deal states that hold a unit: at most one per unit
ACTIVE_DEAL_STATES = ("subscribed", "contracted", "handed_over")
_ACTIVE_HOLD = text("state = 'active'")
_ACTIVE_DEAL = text("state IN ('subscribed', 'contracted', 'handed_over')")


class BuildingRow(Base):
    """A building (楼栋) of a project."""

    __tablename__ = "sales_buildings"
    __table_args__ = (UniqueConstraint("project", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class UnitRow(Base):
    """A unit of a building: the 销控表's row."""

    __tablename__ = "sales_units"
    __table_args__ = (UniqueConstraint("building_id", "room"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("sales_buildings.id"), index=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    entrance: Mapped[str | None] = mapped_column(String(16))
    floor: Mapped[int] = mapped_column(Integer)
    room: Mapped[str] = mapped_column(String(32))
    gross_area: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    net_area: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    #: the area measured after completion (实测面积), for the 补差 adjustment
    final_area: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    layout: Mapped[str | None] = mapped_column(String(32))
    orientation: Mapped[str | None] = mapped_column(String(16))
    list_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    price_per_m2: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    #: withheld, available, held, subscribed, contracted, handed_over (as written)
    status: Mapped[str] = mapped_column(String(12))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class HoldRow(Base):
    """A hold of a unit for one customer by one consultant, until ``expires_at``."""

    __tablename__ = "sales_holds"
    __table_args__ = (
        Index("uq_sales_holds_active", "unit_id", unique=True,
              sqlite_where=_ACTIVE_HOLD, postgresql_where=_ACTIVE_HOLD),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("sales_units.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    staff: Mapped[str | None] = mapped_column(String(64))
    #: active, released, expired or converted (became a subscription)
    state: Mapped[str] = mapped_column(String(12))
    held_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class TicketSequenceRow(Base):
    """The last ticket number issued at a project (locked to number without gaps)."""

    __tablename__ = "sales_ticket_sequences"

    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class TicketRow(Base):
    """A ticket (认筹): a refundable deposit of intent (诚意金), numbered per project."""

    __tablename__ = "sales_tickets"
    __table_args__ = (UniqueConstraint("project", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    #: issued, called, converted or refunded
    state: Mapped[str] = mapped_column(String(12))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    called_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deal_id: Mapped[int | None] = mapped_column(Integer)


class DealRow(Base):
    """A deal on a unit: subscribed (认购), contracted (签约), handed over (交房) or
    cancelled (退房). ``amount`` is the subscribed price less the discount; ``total``
    the contract's."""

    __tablename__ = "sales_deals"
    __table_args__ = (
        Index("uq_sales_deals_active", "unit_id", unique=True,
              sqlite_where=_ACTIVE_DEAL, postgresql_where=_ACTIVE_DEAL),
        # One deal per contract number at a project, whatever became of it (a number is
        # never signed again); decided by the database when two offices sign at once.
        Index("uq_sales_deals_contract", "project", "contract_no", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("sales_units.id"), index=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    #: the primary buyer (also a party)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    staff: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    discount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    deposit: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("sales_tickets.id"))
    subscribed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sign_by: Mapped[dt.date] = mapped_column(Date)
    contract_no: Mapped[str | None] = mapped_column(String(64))
    total: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    #: full, mortgage or instalments
    payment: Mapped[str | None] = mapped_column(String(12))
    signed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    handed_over_on: Mapped[dt.date | None] = mapped_column(Date)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PartyRow(Base):
    """A party to a deal: the buyer, a co-owner or a spouse, with a share in percent.
    A party removed by a change of buyer keeps its row with ``removed_at``."""

    __tablename__ = "sales_parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("sales_deals.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    #: buyer, co_owner or spouse
    role: Mapped[str] = mapped_column(String(12))
    share: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    primary: Mapped[bool] = mapped_column(default=False)
    #: the party's core stage at the project when they joined the deal (None: no link):
    #: a cancellation never moves them behind the stage they had without this plugin
    prior_stage: Mapped[str | None] = mapped_column(String(12))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DealEventRow(Base):
    """The deal's history: every step and change, with who, when and why."""

    __tablename__ = "sales_deal_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("sales_deals.id"), index=True)
    #: subscribe, sign, handover, cancel, change_unit, change_buyer, schedule, receive
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    staff: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class InstalmentRow(Base):
    """One line of a deal's payment schedule: what is due, and when. An area-difference
    adjustment (补差) may be negative (a refund)."""

    __tablename__ = "sales_instalments"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("sales_deals.id"), index=True)
    #: deposit, down_payment, mortgage, instalment or area_adjustment
    kind: Mapped[str] = mapped_column(String(16))
    due: Mapped[dt.date] = mapped_column(Date, index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    #: when the reminder event was written (once per line)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReceiptRow(Base):
    """Money received for a deal; ``ref`` (the bank's or the cashier's reference) makes
    a receipt idempotent."""

    __tablename__ = "sales_receipts"
    __table_args__ = (UniqueConstraint("deal_id", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("sales_deals.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    received_on: Mapped[dt.date] = mapped_column(Date)
    ref: Mapped[str] = mapped_column(String(64))
    staff: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
