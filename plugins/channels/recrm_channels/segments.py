"""Segment fields ``channels.agency`` and ``channels.state`` (``recrm_segment_fields``).

Both read the customer's registrations (by id, or by one of their mobiles), as of the
moment the query is built: a pending registration whose window ran out counts as
``expired``, a confirmed one whose protection ran out as ``released`` (what ``channel
sweep`` would write). The core refuses plugin fields to partners, so an agency never
segments by them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, or_, select

from recrm_core import SegmentField, utcnow
from recrm_core.resolution import MOBILE
from recrm_core.tables import IdentityRow

from .tables import RegistrationRow

R = RegistrationRow


def _theirs(customer_id: ColumnElement[int]) -> ColumnElement[bool]:
    """The customer's registrations: linked by id, or made for one of their mobiles
    before the customer existed (linked on the first visit)."""
    mobile = exists().where(IdentityRow.customer_id == customer_id,
                            IdentityRow.kind == MOBILE, IdentityRow.value == R.mobile)
    # Correlated two levels up (the customers row of the segment's query).
    return or_(R.customer_id == customer_id, mobile.correlate_except(IdentityRow))


def _state_now() -> ColumnElement[Any]:
    now = utcnow()
    return case(
        (and_(R.state == "pending", R.valid_until < now), "expired"),
        (and_(R.state == "confirmed", R.protected_until.is_not(None),
              R.protected_until < now), "released"),
        else_=R.state,
    )


def _agency(customer_id: ColumnElement[int]) -> Select[Any]:
    now = utcnow()
    active = or_(
        and_(R.state == "pending", R.valid_until >= now),
        and_(R.state == "confirmed", or_(R.protected_until.is_(None),
                                         R.protected_until >= now)),
        R.state == "converted",
    )
    return select(R.agency).where(_theirs(customer_id), active)


def _state(customer_id: ColumnElement[int]) -> Select[Any]:
    return select(_state_now()).where(_theirs(customer_id))


def fields() -> list[SegmentField]:
    return [
        SegmentField(name="channels.agency", expression=_agency, type="str", many=True,
                     description="agency code of the customer's active registration "
                     "(pending, confirmed or converted, at any project)"),
        SegmentField(name="channels.state", expression=_state, type="str", many=True,
                     description="state of each of the customer's registrations as of now "
                     "(pending, confirmed, converted, expired, released, rejected)"),
    ]
