"""recrm-membership: the owners' club (like Vanke's 万客会) as a recrm plugin.

- enrolment: automatic when a customer becomes an owner (``auto_enrol``), or
  explicit for anyone; a unique member number; leaving and re-joining keep it;
- tiers from settings, by lifetime points or contracts signed, every change recorded;
- an append-only points ledger: earn (per interaction kind, or for an event),
  redeem, expire (oldest first, as ledger entries), adjust; the balance is the sum
  of the ledger and never goes negative; each award is keyed by its event under a
  UNIQUE constraint, so an event never awards twice;
- referrals (老带新): the referrer earns the reward once, when the referred customer
  first signs a contract for the project;
- merges: the survivor keeps its number, the duplicate's ledger moves over, one
  award per event key;
- privacy requests: ``recrm_customer_export`` (everything about the member) and
  ``recrm_customer_erase`` (membership and history deleted; point totals and the other
  side of referrals kept anonymously), see :mod:`recrm_membership.privacy`;
- who sees what: every read takes the ``actor`` and follows ``crm.access``
  (partners are refused members' details, analysts read no free text); an expiry
  run is recorded in the audit log as ``membership.expire``;
- HTTP API routes under ``/v1/membership/`` (``recrm_api_routes``, see
  :mod:`recrm_membership.api`): a member, their balance and ledger, a redemption;
- reports registered with ``recrm_reports`` (``recrm report list``):
  ``membership.points`` and ``membership.referrals``, per project and period, the
  figures of ``recrm member report`` (see :mod:`recrm_membership.reports`);
- ``recrm member ...`` commands, timeline entries, segment fields
  (``membership.member``, ``membership.tier``, ``membership.points``,
  ``membership.number``) and a section in ``recrm demo``.

Use it in code through :func:`service`::

    from recrm_membership import service
    club = service(crm)
    club.enroll(customer_id)
    club.redeem(customer_id, 500, reason="物业费抵扣")

The package is the plugin: the hook implementations below are what pluggy finds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recrm_core import lazy_exports

# The hook implementations pluggy finds: loading the plugin imports these and the
# settings, nothing more; every other public name is imported on first use.
from .hooks import (
    recrm_api_routes,
    recrm_customer_erase,
    recrm_customer_export,
    recrm_customer_merged,
    recrm_declare_tables,
    recrm_demo,
    recrm_interactions_logged,
    recrm_message_fields,
    recrm_project_renamed,
    recrm_register_audit_actions,
    recrm_register_commands,
    recrm_register_settings,
    recrm_reports,
    recrm_segment_fields,
    recrm_stages_changed,
    recrm_timeline,
)
from .settings import MAX_POINTS, NAME, MembershipSettings, Tier, settings

#: the plugin's name (``recrm.toml``, settings section, table and field prefix)
name = NAME
__version__ = "0.1.0"

lazy_exports(__name__, {
    **dict.fromkeys([
        "Award", "Balance", "ExpiredEntry", "ExpiryResult", "LedgerEntry", "Member",
        "MemberEvent", "MemberReferralStats", "MemberView", "PointsTotals",
        "ProjectReferralStats", "Redemption", "RedemptionIn", "Referral", "ReferralStats",
        "Report", "TierChange", "TierInfo",
    ], "models"),
    "Membership": "service",
    "service": "service",
    **dict.fromkeys(["LedgerRow", "MemberEventRow", "MemberRow", "ReferralRow",
                     "TierChangeRow"], "tables"),
})

if TYPE_CHECKING:  # the same names, for type checkers
    from .models import (
        Award,
        Balance,
        ExpiredEntry,
        ExpiryResult,
        LedgerEntry,
        Member,
        MemberEvent,
        MemberReferralStats,
        MemberView,
        PointsTotals,
        ProjectReferralStats,
        Redemption,
        RedemptionIn,
        Referral,
        ReferralStats,
        Report,
        TierChange,
        TierInfo,
    )
    from .service import Membership, service
    from .tables import LedgerRow, MemberEventRow, MemberRow, ReferralRow, TierChangeRow

__all__ = [
    "MAX_POINTS",
    "NAME",
    "Award",
    "Balance",
    "ExpiredEntry",
    "ExpiryResult",
    "LedgerEntry",
    "LedgerRow",
    "Member",
    "MemberEvent",
    "MemberEventRow",
    "MemberReferralStats",
    "MemberRow",
    "MemberView",
    "Membership",
    "MembershipSettings",
    "PointsTotals",
    "ProjectReferralStats",
    "Redemption",
    "RedemptionIn",
    "Referral",
    "ReferralRow",
    "ReferralStats",
    "Report",
    "Tier",
    "TierChange",
    "TierChangeRow",
    "TierInfo",
    "name",
    "recrm_api_routes",
    "recrm_customer_erase",
    "recrm_customer_export",
    "recrm_customer_merged",
    "recrm_declare_tables",
    "recrm_demo",
    "recrm_interactions_logged",
    "recrm_message_fields",
    "recrm_project_renamed",
    "recrm_register_audit_actions",
    "recrm_register_commands",
    "recrm_register_settings",
    "recrm_reports",
    "recrm_segment_fields",
    "recrm_stages_changed",
    "recrm_timeline",
    "service",
    "settings",
]
