"""Pydantic models: what the ``Membership`` service and ``recrm member --json`` return."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .settings import MAX_POINTS

MemberStatus = Literal["active", "left", "merged"]
EntryKind = Literal["earn", "referral", "redeem", "expire", "adjust", "reversal"]
ReferralStatus = Literal["pending", "converted", "superseded"]


class _Out(BaseModel):
    # Validators are built on first use: every recrm command imports this plugin,
    # few of them return its models.
    model_config = ConfigDict(defer_build=True)


class Member(_Out):
    customer_id: int
    number: str
    status: MemberStatus
    tier: str
    contracts: int
    enrolled_at: dt.datetime
    left_at: dt.datetime | None = None
    balance: int
    lifetime_points: int


class LedgerEntry(_Out):
    id: int
    customer_id: int
    kind: EntryKind
    points: int
    #: the award key ``kind:subject:ref`` (``None`` for unkeyed entries)
    event_key: str | None = None
    project: str | None = None
    interaction_id: int | None = None
    source_entry_id: int | None = None
    duplicate_of: int | None = None
    reason: str | None = None
    actor_staff: str | None = None
    occurred_at: dt.datetime
    expires_at: dt.datetime | None = None
    recorded_at: dt.datetime


class Balance(_Out):
    """Points of one member, all derived from the ledger."""

    customer_id: int
    number: str
    balance: int
    #: every point ever credited (a merge's duplicate awards aside): what tiers use
    lifetime_points: int
    redeemed: int
    expired: int
    #: points past their expiry date that the next ``expire`` run will write off
    due_to_expire: int
    next_expiry_at: dt.datetime | None = None
    next_expiry_points: int = 0


class Award(_Out):
    """The outcome of an earn: ``awarded`` is false when the event had already been
    awarded (``entry`` is then the earlier award) or the customer is not an active
    member (``entry`` is ``None``)."""

    awarded: bool
    entry: LedgerEntry | None = None
    balance: int


class Redemption(_Out):
    entry: LedgerEntry
    #: false when ``ref`` had been redeemed before (a retry): nothing was deducted
    redeemed: bool
    balance: int
    #: points written off by the expiry that runs before every redemption
    expired_first: int = 0


class RedemptionIn(BaseModel):
    """A redemption through the HTTP API (``POST /v1/membership/members/{id}/redemptions``):
    the arguments of ``Membership.redeem``, which checks them as for ``recrm member
    redeem`` (a blank ``ref`` or ``reason`` is none; one too long or holding a NUL is 422)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    points: int = Field(strict=True, ge=1, le=MAX_POINTS,
                        description="points to spend (at most the balance, else 409)")
    ref: str | None = Field(default=None, description="the order number (at most 128 "
                            "characters): a redemption retried with the same ref deducts "
                            "once and answers 200 with redeemed false")
    reason: str | None = Field(default=None, description="free text kept in the ledger "
                               "(at most 200 characters)")


class TierChange(_Out):
    customer_id: int
    old_tier: str | None
    new_tier: str
    reason: str
    lifetime_points: int
    contracts: int
    at: dt.datetime


class MemberEvent(_Out):
    customer_id: int
    number: str
    action: str
    note: str | None = None
    actor_staff: str | None = None
    at: dt.datetime


class Referral(_Out):
    id: int
    referrer_id: int
    referred_id: int
    project: str
    status: ReferralStatus
    created_at: dt.datetime
    converted_at: dt.datetime | None = None
    reward_points: int = 0
    #: why there was no reward (``reward withheld: <reason> (<plugin>)``, a referrer
    #: who had left) or why the referral was superseded; free text
    note: str | None = None


class MemberView(_Out):
    """``recrm member show``: the membership, its balance and its whole history."""

    member: Member
    balance: Balance
    ledger: list[LedgerEntry]
    tier_changes: list[TierChange]
    events: list[MemberEvent]
    referrals_made: list[Referral]
    referred_by: list[Referral]


class ExpiredEntry(_Out):
    customer_id: int
    points: int
    source_entry_id: int


class ExpiryResult(_Out):
    now: dt.datetime
    members: int
    points: int
    entries: list[ExpiredEntry] = Field(default_factory=list)
    #: a preview: nothing was written
    dry_run: bool = False


class TierInfo(_Out):
    name: str
    min_points: int | None = None
    min_contracts: int | None = None
    members: int


class ReferralStats(_Out):
    made: int
    converted: int
    #: converted / made, ``None`` when none were made
    conversion_rate: float | None


class MemberReferralStats(ReferralStats):
    customer_id: int
    number: str | None
    name: str | None = None


class ProjectReferralStats(ReferralStats):
    project: str


class PointsTotals(_Out):
    #: every credit: earned, referral rewards and positive adjustments
    issued: int
    redeemed: int
    expired: int
    #: negative adjustments
    deducted: int
    outstanding: int


class Report(_Out):
    project: str | None = None
    members: int
    left: int
    members_by_tier: dict[str, int]
    points: PointsTotals
    referrals: ReferralStats
    referrals_by_member: list[MemberReferralStats]
    referrals_by_project: list[ProjectReferralStats]
