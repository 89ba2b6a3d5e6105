"""``/v1/membership/...``: the club over HTTP (``recrm_api_routes``).

Imported only by the hook, when the API app is built: FastAPI stays out of every
command's start-up. Each route is the service call of the matching ``recrm member``
command, with the key's actor (``CurrentActor``), so the roles and masking are the
CLI's: partners are refused member details (403), analysts read no free text and
change nothing (403), a non-member or an unknown customer is 404, a redemption the
balance or the membership refuses is 409.

Operation ids are ``membership_<function name>`` (``membership_balance``): keep the
names, generated clients use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Path, Response, status

from recrm_core.api import CurrentActor, JsonBody

from .models import Balance, LedgerEntry, Member, Redemption, RedemptionIn
from .service import Membership

if TYPE_CHECKING:
    from recrm_core import CRM
    from recrm_core.api import ApiRoutes

#: an id as the database stores it (a larger one names no customer: 422, not a 500)
CustomerId = Annotated[int, Path(ge=1, le=2**31 - 1, description="customer id")]


def add_routes(crm: CRM, routes: ApiRoutes) -> None:
    """Add the club's routes to ``routes.api`` (served under ``/v1/membership``)."""
    club = Membership(crm)
    api = routes.api

    @api.get("/members/{customer_id}", response_model=Member)
    def member(customer_id: CustomerId, actor: CurrentActor) -> Member:
        """The membership of a customer: number, status, tier, balance and lifetime
        points (``recrm member show``'s first line); 404 for a non-member."""
        return club.get(customer_id, actor=actor)

    @api.get("/members/{customer_id}/balance", response_model=Balance)
    def balance(customer_id: CustomerId, actor: CurrentActor) -> Balance:
        """The member's points, all derived from the ledger: balance, lifetime,
        redeemed, expired, due to expire and the next expiry (``recrm member points``)."""
        return club.balance(customer_id, actor=actor)

    @api.get("/members/{customer_id}/ledger", response_model=list[LedgerEntry])
    def ledger(customer_id: CustomerId, actor: CurrentActor) -> list[LedgerEntry]:
        """The member's points ledger in the order it was written; reasons and award
        keys are hidden from analysts."""
        return club.ledger(customer_id, actor=actor)

    @api.post("/members/{customer_id}/redemptions", response_model=Redemption,
              status_code=status.HTTP_201_CREATED,
              responses={200: {"model": Redemption,
                               "description": "this ref was redeemed before: nothing "
                               "was deducted"}})
    def redeem(customer_id: CustomerId, redemption: JsonBody[RedemptionIn], response: Response,
               actor: CurrentActor) -> Redemption:
        """Spend points (``recrm member redeem``): expired points are written off
        first, more than the balance is 409. 201 when points were deducted; 200 when
        the ``ref`` was redeemed before (a retry: nothing deducted). An
        ``Idempotency-Key`` retry gets the first response again."""
        result = club.redeem(customer_id, redemption.points, ref=redemption.ref,
                             reason=redemption.reason, actor=actor)
        if not result.redeemed:
            response.status_code = status.HTTP_200_OK
        return result
