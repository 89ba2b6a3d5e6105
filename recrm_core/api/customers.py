"""``/v1/customers``: add with identity resolution, find, the 360 view, update,
merge, stage, reassign, disclose; a customer's interactions and consents; a person's
data export and erasure; stage moves and interactions of many customers in one
request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from ..actions import (
    ConsentIn,
    DiscloseIn,
    EraseIn,
    InteractionsIn,
    MergeIn,
    ReassignIn,
    ReassignResult,
    StageIn,
    StagesIn,
)
from ..crm import CRM
from ..errors import InvalidInput
from ..models import (
    AddResult,
    Consent,
    Customer,
    CustomerIn,
    CustomerUpdate,
    CustomerView,
    Interaction,
    InteractionIn,
    StageMove,
    trusted,
)
from ..privacy import ErasureReport
from .auth import CurrentActor, crm_of
from .bodies import JsonBody
from .idempotency import IdempotentRoute
from .problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=IdempotentRoute,
                   responses=PROBLEM_RESPONSES)
Crm = Annotated[CRM, Depends(crm_of)]
#: an id as the database stores it (a larger one names no customer: 422, not a 500)
CustomerId = Annotated[int, Path(ge=1, le=2**31 - 1, description="customer id")]
#: the SDK's move fields, in order; the request's StageMoveIn has each of them
_MOVE_FIELDS = tuple(StageMove.model_fields)


@router.post("", response_model=AddResult, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": AddResult,
                              "description": "merged into an existing customer"}})
def customers_add(record: JsonBody[CustomerIn], response: Response, crm: Crm,
                  actor: CurrentActor) -> AddResult:
    """Add a record with identity resolution: 201 when it created a customer, 200 when
    it merged into the one its mobile, ID card or WeChat unionid names; 409 when its
    keys name different customers."""
    result = crm.customers.add(record, actor=actor)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result.model_copy(update={"customer": crm.access.present(actor, [result.customer])[0]})


@router.get("", response_model=list[Customer])
def customers_find(
    crm: Crm, actor: CurrentActor,
    mobile: Annotated[str | None, Query(max_length=64)] = None,
    id_card: Annotated[str | None, Query(max_length=64)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    wechat: Annotated[str | None, Query(max_length=128,
                                        description="WeChat unionid")] = None,
) -> list[Customer]:
    """Customers by exactly one of mobile, ID card, email or WeChat unionid (a partner
    key: by mobile only)."""
    if sum(v is not None for v in (mobile, id_card, email, wechat)) != 1:
        # The SDK's own message names its argument wechat_unionid; this one, ours.
        raise InvalidInput("mobile", "give exactly one of mobile, id_card, email, wechat")
    return crm.customers.find(mobile=mobile, id_card=id_card, email=email,
                              wechat_unionid=wechat, actor=actor)


@router.post("/reassign", response_model=ReassignResult)
def customers_reassign(body: JsonBody[ReassignIn], crm: Crm, actor: CurrentActor) -> ReassignResult:
    """Move every customer of one consultant (at one project, or all) to another."""
    moved = crm.customers.reassign(body.from_staff, body.to_staff, body.project, actor=actor)
    return ReassignResult(moved=moved)


@router.post("/stages", response_model=list[Customer])
def customers_set_stages(body: JsonBody[StagesIn], crm: Crm, actor: CurrentActor) -> list[Customer]:
    """Stage moves of many customers in one unit of work, in order (a customer may move
    twice): each move's customer after it, in the moves' order. One refused move (409,
    or 404 for an unknown customer) refuses the request: none is applied."""
    # Each request move was validated as StageMoveIn, as strict on every field as
    # StageMove: built as one from its values, not dumped and validated a second time.
    moves = [trusted(StageMove, {name: getattr(move, name) for name in _MOVE_FIELDS})
             for move in body.moves]
    moved = crm.customers.set_stages(moves, actor=actor)
    return crm.access.present(actor, moved)


@router.post("/interactions", response_model=list[Interaction],
             status_code=status.HTTP_201_CREATED)
def interactions_log_many(body: JsonBody[InteractionsIn], crm: Crm,
                          actor: CurrentActor) -> list[Interaction]:
    """Interactions of many customers in one unit of work, in order (a merged-away id
    logs on its survivor). An unknown customer or staff refuses the request: none is
    logged."""
    return crm.interactions.log_many(body.interactions, actor=actor)


@router.get("/{customer_id}", response_model=CustomerView)
def customers_view(customer_id: CustomerId, crm: Crm, actor: CurrentActor) -> CustomerView:
    """The 360 view: profile, identities, projects, timeline, cases, consents — as the
    key's role may see it."""
    return crm.customers.view(customer_id, actor=actor)


@router.patch("/{customer_id}", response_model=Customer)
def customers_update(customer_id: CustomerId, changes: JsonBody[CustomerUpdate], crm: Crm,
                     actor: CurrentActor) -> Customer:
    """Overwrite the given profile fields; add mobiles and WeChat unionids."""
    updated = crm.customers.update(customer_id, changes, actor=actor)
    return crm.access.present(actor, [updated])[0]


@router.post("/{customer_id}/merge", response_model=Customer)
def customers_merge(customer_id: CustomerId, body: JsonBody[MergeIn], crm: Crm,
                    actor: CurrentActor) -> Customer:
    """Merge ``duplicate_id`` into this customer (409 when their ID cards differ)."""
    merged = crm.customers.merge(customer_id, body.duplicate_id, actor=actor)
    return crm.access.present(actor, [merged])[0]


@router.post("/{customer_id}/stage", response_model=Customer)
def customers_set_stage(customer_id: CustomerId, body: JsonBody[StageIn], crm: Crm,
                        actor: CurrentActor) -> Customer:
    """Move the stage at a project: forward only unless ``force`` (409 otherwise)."""
    moved = crm.customers.set_stage(customer_id, body.stage, body.project, unit=body.unit,
                                    amount=body.amount, force=body.force,
                                    occurred_at=body.occurred_at, actor=actor)
    return crm.access.present(actor, [moved])[0]


@router.post("/{customer_id}/disclose", response_model=CustomerView)
def customers_disclose(customer_id: CustomerId, body: JsonBody[DiscloseIn], crm: Crm,
                       actor: CurrentActor) -> CustomerView:
    """The 360 view in full for a role that may see this customer in full but is shown
    it masked (a manager); audited with the reason."""
    return crm.customers.disclose(customer_id, body.reason, actor=actor)


@router.get("/{customer_id}/export", response_model=dict[str, Any])
def customers_export(customer_id: CustomerId, crm: Crm, actor: CurrentActor) -> dict[str, Any]:
    """Everything held about the person, the core's and every enabled plugin's (PIPL
    Art. 45), as `recrm customers export`; admin only, audited."""
    return crm.privacy.export(customer_id, actor=actor)


@router.post("/{customer_id}/erase", response_model=ErasureReport)
def customers_erase(customer_id: CustomerId, body: JsonBody[EraseIn], crm: Crm,
                    actor: CurrentActor) -> ErasureReport:
    """Erase the person and the customers merged into them (PIPL Art. 47), as `recrm
    customers erase`: every plugin takes part, then every text column is scanned for
    their values (409, rolled back, if one is left); admin only, audited."""
    return crm.privacy.erase(customer_id, body.reason, dry_run=body.dry_run, actor=actor)


@router.post("/{customer_id}/interactions", response_model=Interaction,
             status_code=status.HTTP_201_CREATED)
def interactions_log(customer_id: CustomerId, body: JsonBody[InteractionIn], crm: Crm,
                     actor: CurrentActor) -> Interaction:
    """Append an interaction (call, visit, WeChat, ...) to the customer's timeline."""
    return crm.interactions.log(customer_id, body, actor=actor)


@router.get("/{customer_id}/interactions", response_model=list[Interaction])
def interactions_list(
    customer_id: CustomerId, crm: Crm, actor: CurrentActor,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    project: Annotated[str | None, Query(max_length=64)] = None,
) -> list[Interaction]:
    """The customer's interactions, newest first."""
    return crm.interactions.list(customer_id, limit, actor=actor, project=project)


@router.get("/{customer_id}/consents", response_model=list[Consent])
def consents_current(customer_id: CustomerId, crm: Crm, actor: CurrentActor) -> list[Consent]:
    """The deciding (newest) consent record per channel and purpose."""
    return crm.consent.current(customer_id, actor=actor)


@router.post("/{customer_id}/consents", response_model=Consent,
             status_code=status.HTTP_201_CREATED)
def consents_record(customer_id: CustomerId, body: JsonBody[ConsentIn], crm: Crm,
                    actor: CurrentActor) -> Consent:
    """Grant or withdraw consent for a channel and purpose."""
    return crm.consent.record(customer_id, body.channel, body.purpose, body.granted,
                              body.source, actor=actor)
