"""The club's segment fields (``recrm_segment_fields``): SQL over the member rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, exists, func, select

from recrm_core import (
    SegmentField,
)

from .tables import LedgerRow, MemberRow

if TYPE_CHECKING:
    pass

def _member(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return exists().where(MemberRow.customer_id == customer_id, MemberRow.status == "active")


def _tier(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    # Non-members (and members who left) have no tier: NULL, found by is_null.
    return (
        select(MemberRow.tier)
        .where(MemberRow.customer_id == customer_id, MemberRow.status == "active")
        .scalar_subquery()
    )


def _points(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return (
        select(func.coalesce(func.sum(LedgerRow.points), 0))
        .where(LedgerRow.customer_id == customer_id)
        .scalar_subquery()
    )


def _number(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return (
        select(MemberRow.number)
        .where(MemberRow.customer_id == customer_id, MemberRow.status != "merged")
        .scalar_subquery()
    )


def fields() -> list[SegmentField]:
    """``membership.member``, ``.tier``, ``.points`` and ``.number``."""
    return [
        SegmentField(name="membership.member", expression=_member, type="bool",
                     description="an active member of the club"),
        SegmentField(name="membership.tier", expression=_tier, type="str",
                     description="tier of an active member (null otherwise)"),
        SegmentField(name="membership.points", expression=_points, type="int",
                     description="points balance (0 for non-members)"),
        SegmentField(name="membership.number", expression=_number, type="str",
                     description="member number (kept after leaving)"),
    ]
