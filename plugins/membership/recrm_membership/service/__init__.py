"""The membership club: enrolment, tiers, the points ledger, expiry and referrals.

Two layers:

- functions ending in ``_in`` work inside a ``UnitOfWork`` (a service call of ours,
  or a core operation whose hook we are in) and never open a transaction;
- :class:`Membership` is the public service: each method is one operation (one
  transaction), takes customer ids and returns pydantic models.

Concurrency. Every write to a member's ledger first locks the member row
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every recrm transaction starts
with ``BEGIN IMMEDIATE``, which already serialises writers), so a balance read and
the redemption it allows cannot interleave with another one: the balance never goes
negative. Awards are keyed by their event under a UNIQUE constraint and inserted
with ``ON CONFLICT DO NOTHING``, so the database, not a Python check, guarantees one
award per event.

One module a concept: ``rules``, ``contracts``, ``inputs``, ``views``, ``ledger``,
``enrolment``, ``awards``, ``spending``, ``referrals``, ``merging``, ``club``. Every
public name is importable from here (``from recrm_membership.service import X``).
"""

from __future__ import annotations

from .awards import (
    AwardIn,
    award_in,
    award_interaction_in,
    award_many_in,
    credit_in,
    interaction_award,
    interaction_ref,
)
from .club import Membership, service
from .contracts import ContractUnit, add_months, contract_units, contracts_of, count_contracts
from .enrolment import Joining, enrol_in, enrol_many_in, insert_members, record_enrolment
from .ledger import (
    AWARD_KEY,
    insert_awards,
    insert_entry,
    keyed_entry,
    lifetime_of,
    lock_member,
    lock_member_ids,
    lock_members,
    member_in,
    points_of,
    recompute_tier_in,
)
from .merging import merge_in
from .referrals import (
    ReferralBatch,
    convert_referral_in,
    pending_referrals,
    refer_in,
    withheld_note,
)
from .rules import (
    EXPIRE_ACTION,
    READERS,
    RESERVED_KINDS,
    SEEN_INTERACTIONS,
    SIGNED,
    SPENDING,
    STAFF,
    STAGE_KINDS,
    WITHHELD,
)
from .spending import (
    balance_in,
    expire_member_in,
    expire_members_in,
    fifo,
    redeem_in,
    spendable_in,
)
from .views import entry_model, event_key, member_model, referral_model

__all__ = [
    "AWARD_KEY",
    "EXPIRE_ACTION",
    "READERS",
    "RESERVED_KINDS",
    "SEEN_INTERACTIONS",
    "SIGNED",
    "SPENDING",
    "STAFF",
    "STAGE_KINDS",
    "WITHHELD",
    "AwardIn",
    "ContractUnit",
    "Joining",
    "Membership",
    "ReferralBatch",
    "add_months",
    "award_in",
    "award_interaction_in",
    "award_many_in",
    "balance_in",
    "contract_units",
    "contracts_of",
    "convert_referral_in",
    "count_contracts",
    "credit_in",
    "enrol_in",
    "enrol_many_in",
    "entry_model",
    "event_key",
    "expire_member_in",
    "expire_members_in",
    "fifo",
    "insert_awards",
    "insert_entry",
    "insert_members",
    "interaction_award",
    "interaction_ref",
    "keyed_entry",
    "lifetime_of",
    "lock_member",
    "lock_member_ids",
    "lock_members",
    "member_in",
    "member_model",
    "merge_in",
    "pending_referrals",
    "points_of",
    "recompute_tier_in",
    "record_enrolment",
    "redeem_in",
    "refer_in",
    "referral_model",
    "service",
    "spendable_in",
    "withheld_note",
]
