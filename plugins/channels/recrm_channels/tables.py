"""The plugin's tables, declared on ``recrm_core.Base`` and prefixed ``channels_``.

A registration holds a mobile and a name (personal data: see privacy.py); it links to
a core customer only once one exists (a visit), by ``customer_id``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
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

#: the states that hold a customer: at most one per (mobile, project)
ACTIVE_STATES = ("pending", "confirmed", "converted")
_ACTIVE = text("state IN ('pending', 'confirmed', 'converted')")


class AgencyRow(Base):
    """An agency (中介/渠道) the developer works with."""

    __tablename__ = "channels_agencies"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: active or suspended (a suspended agency registers nobody)
    status: Mapped[str] = mapped_column(String(12), default="active")
    contact: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AgentRow(Base):
    """An agent of an agency; ``id`` is also their staff id (role ``partner``)."""

    __tablename__ = "channels_agents"

    id: Mapped[str] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    agency: Mapped[str] = mapped_column(ForeignKey("channels_agencies.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    mobile: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RuleSetRow(Base):
    """One version of a project's rules, in force from ``effective_from`` until the
    next version's."""

    __tablename__ = "channels_rule_sets"
    __table_args__ = (UniqueConstraint("project", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RegistrationRow(Base):
    """One registration (报备) as made, with its current decision.

    A refused one is kept (state ``rejected``, with the reason). The partial unique
    index lets the database hold one active registration per mobile and project,
    whoever writes.
    """

    __tablename__ = "channels_registrations"
    __table_args__ = (
        Index("uq_channels_registrations_active", "mobile", "project", unique=True,
              sqlite_where=_ACTIVE, postgresql_where=_ACTIVE),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("channels_agents.id"), index=True)
    agency: Mapped[str] = mapped_column(ForeignKey("channels_agencies.code"), index=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    #: E.164; None once erased
    mobile: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(100))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: the rule-set version in force when it was made (0: the [channels] defaults)
    rule_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(300))
    #: the rule-set version of the last decision
    decided_version: Mapped[int] = mapped_column(Integer)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    protected_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    converted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    explanation: Mapped[str | None] = mapped_column(String(1000))


class TransitionRow(Base):
    """Every state a registration entered, with why and under which rule version."""

    __tablename__ = "channels_transitions"
    #: a state may be entered again later (a cancelled deal, converted again)
    __table_args__ = (UniqueConstraint("registration_id", "state", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("channels_registrations.id"), index=True)
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(300))
    rule_version: Mapped[int] = mapped_column(Integer)
    #: when it happened (a window's end for an expiry), not when it was written
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class TermsRow(Base):
    """An agency's commission terms at a project (one row per agency and project; a
    new ``terms set`` replaces it, entries already written keep their amounts)."""

    __tablename__ = "channels_terms"

    agency: Mapped[str] = mapped_column(ForeignKey("channels_agencies.code"), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: the deal's commission: a percent of the contract amount, or a fixed sum
    percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    fixed: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    visit_reward: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    subscription_reward: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CommissionEntryRow(Base):
    """One entry of the commission ledger, written once (``key`` is unique): a
    ``visit`` or ``subscription`` reward, a ``deal`` commission (once per unit), a
    ``clawback`` reversing one of them, or a ``withheld`` note (amount 0)."""

    __tablename__ = "channels_commission_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("channels_registrations.id"), index=True)
    agency: Mapped[str] = mapped_column(ForeignKey("channels_agencies.code"), index=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    unit: Mapped[str | None] = mapped_column(String(64))
    #: the contract amount a deal's commission was computed from
    deal_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    #: the entry a clawback reverses
    reverses_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(300))
    #: when it was earned or reversed (the stage move's time)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


_OPEN = text("state = 'open'")


class DisputeRow(Base):
    """A dispute over who brought a customer: ``claimant_id`` (a registration of the
    disputing agency) asks to hold the customer. An upheld dispute is a ruling that
    every later replay of 判客 honours; the notes are free text (personal data: see
    privacy.py)."""

    __tablename__ = "channels_disputes"
    __table_args__ = (
        Index("uq_channels_disputes_open", "claimant_id", unique=True,
              sqlite_where=_OPEN, postgresql_where=_OPEN),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the registration disputed (the claimant's own, or another agency's)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("channels_registrations.id"), index=True)
    #: the disputing agency's registration, awarded when upheld
    claimant_id: Mapped[int] = mapped_column(ForeignKey("channels_registrations.id"),
                                             index=True)
    agency: Mapped[str] = mapped_column(ForeignKey("channels_agencies.code"), index=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    #: open, upheld or dismissed
    state: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(String(500))
    opened_by: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(String(500))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
