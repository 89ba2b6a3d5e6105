"""The plugin's tables, declared on ``recrm_core.Base`` and prefixed ``membership_``.

Rows are keyed by ``customer_id`` so they can follow a merge. The ledger is
append-only: the balance is the sum of its entries, never a stored counter.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from recrm_core import Base, UTCDateTime


class MemberRow(Base):
    """One membership per customer; it stays (status ``left``) when they leave, so
    re-joining keeps the number and the history. A member merged into another keeps
    its row with status ``merged``."""

    __tablename__ = "membership_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    #: set right after the insert, from ``id``: unique by construction and by constraint
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(8), default="active", index=True)
    tier: Mapped[str] = mapped_column(String(32))
    #: projects where the customer signed a contract (stage buyer or owner)
    contracts: Mapped[int] = mapped_column(Integer, default=0)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))


class LedgerRow(Base):
    """One points movement. ``points`` is signed: earn/referral/adjust credit,
    redeem/expire/reversal debit.

    An award is keyed by the event that caused it: ``(event_kind, event_subject,
    event_ref)`` — e.g. ``("contract", customer, "XL2/3-1-1201")`` or ``("event",
    customer, "interaction:42")``. The UNIQUE constraint makes the database refuse a
    second award for the same event, whoever writes it and however often.
    Unkeyed entries (NULLs) never collide.
    """

    __tablename__ = "membership_ledger"
    __table_args__ = (UniqueConstraint("event_kind", "event_subject", "event_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)
    event_kind: Mapped[str | None] = mapped_column(String(32))
    #: the customer the event happened to (the referred customer for a referral)
    event_subject: Mapped[int | None] = mapped_column(Integer)
    event_ref: Mapped[str | None] = mapped_column(String(128))
    project: Mapped[str | None] = mapped_column(String(64))
    interaction_id: Mapped[int | None] = mapped_column(Integer)
    #: for expire and reversal entries: the credit they take points from
    source_entry_id: Mapped[int | None] = mapped_column(ForeignKey("membership_ledger.id"))
    #: set by a merge on an award that repeats one the survivor holds (same event):
    #: it no longer counts towards lifetime points, and a reversal takes it back
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("membership_ledger.id"))
    reason: Mapped[str | None] = mapped_column(String(200))
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    #: when the event happened (a back-dated contract earns at its date)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class TierChangeRow(Base):
    """Every tier a member was given, with why; the first row is the enrolment."""

    __tablename__ = "membership_tier_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    old_tier: Mapped[str | None] = mapped_column(String(32))
    new_tier: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    lifetime_points: Mapped[int] = mapped_column(Integer)
    contracts: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MemberEventRow(Base):
    """Membership history: enrol, leave, rejoin, merge."""

    __tablename__ = "membership_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(200))
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ReferralRow(Base):
    """老带新: a member refers a customer for a project. One live referral per
    referred customer and project (a partial unique index: merges can leave
    ``superseded`` rows behind for the record)."""

    __tablename__ = "membership_referrals"
    __table_args__ = (
        Index(
            "uq_membership_referrals_live",
            "referred_id",
            "project",
            unique=True,
            sqlite_where=text("status <> 'superseded'"),
            postgresql_where=text("status <> 'superseded'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    referred_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    project: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    converted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reward_entry_id: Mapped[int | None] = mapped_column(ForeignKey("membership_ledger.id"))
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(200))
