"""The club's names: the stages, kinds and roles its rules name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: stages at which a customer has signed a contract for a project
SIGNED = ("buyer", "owner")
#: interactions the core records for stage changes: keyed by project and unit, so the
#: same contract recorded twice (a re-sync, a duplicate customer) awards once
STAGE_KINDS = ("subscription", "contract", "handover")
#: ledger kinds that do not count towards lifetime points (tiers)
SPENDING = ("redeem", "expire", "reversal")
#: award kinds the club keys itself (referral rewards, redemptions by order number)
RESERVED_KINDS = ("referral", "redeem")
#: where the interaction hook leaves the interactions of one operation by customer
#: (``uow.state``), for the stage hook that enrols an owner and awards the handover
SEEN_INTERACTIONS = "membership.interactions"

# Who sees what (``crm.access``). A member's points, ledger and history are details
# of one customer: a partner (an agency) sees a customer's masked name and mobile
# only, so none of them. Ledger reasons and event notes are free text (an
# interaction's summary becomes the reason of its award), and an award key names
# its event (a contract's is ``contract:ID:PROJECT/UNIT``: with the customer, a home
# address; a staff's ref is free text): all hidden from analysts.
#: roles that may read a member's details and the club's reports
READERS: tuple[str, ...] = ("admin", "manager", "sales", "service", "analyst")
#: roles that may change the club: enrol, award, redeem, adjust, refer, expire
STAFF: tuple[str, ...] = ("admin", "manager", "sales", "service")
#: the audit action of an expiry run that wrote points off (registered by the plugin)
EXPIRE_ACTION = "membership.expire"
#: how a referral's note starts when another plugin withheld its reward
WITHHELD = "reward withheld: "



def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    """``items`` in slices of ``size``: ids a statement binds at a time."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
