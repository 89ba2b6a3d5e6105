"""``/v1/segments``: count and list the customers a segment definition selects; the
list is paged by an opaque cursor (keyset on the customer id)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ..actions import CustomerPage, SegmentCount, SegmentQuery
from ..crm import CRM
from .auth import CurrentActor, crm_of
from .idempotency import IdempotentRoute
from .problems import PROBLEM_RESPONSES, ApiProblem

router = APIRouter(prefix="/v1/segments", tags=["segments"], route_class=IdempotentRoute,
                   responses=PROBLEM_RESPONSES)
Crm = Annotated[CRM, Depends(crm_of)]
_CURSOR = "c1:"


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The last id of the previous page; 422 for anything this API did not hand out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    number = text.removeprefix(_CURSOR)
    if not text.startswith(_CURSOR) or not number.isdigit() or not 0 < int(number) < 2**31:
        raise ApiProblem(422, "cursor: not a cursor this API returned; pass next_cursor "
                         "unchanged", field="cursor")
    return int(number)


@router.post("/count", response_model=SegmentCount)
def segments_count(query: SegmentQuery, crm: Crm, actor: CurrentActor) -> SegmentCount:
    """How many active customers the definition selects (all without one)."""
    if query.definition is None:
        return SegmentCount(count=crm.customers.count(actor=actor))
    return SegmentCount(count=crm.segments.count(query.definition, actor=actor))


@router.post("/customers", response_model=CustomerPage)
def segments_customers(
    query: SegmentQuery, crm: Crm, actor: CurrentActor,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> CustomerPage:
    """One page of the selected customers in id order, as the key's role may see them;
    follow ``next_cursor`` until it is null. Customers added meanwhile come at the
    end, none is skipped or repeated."""
    after = decode_cursor(cursor) if cursor else None
    items, more = crm.segments.page(query.definition, limit, after, actor=actor)
    return CustomerPage(items=items,
                        next_cursor=encode_cursor(items[-1].id) if more and items else None)
