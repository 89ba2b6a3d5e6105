"""``/v1/channels/...``: registrations for agencies' keys (``recrm_api_routes``).

Imported only by the hook, when the API app is built. A partner key registers as its
own agent (the key's staff id is the agent id) and lists its own agency's
registrations only, with masked mobiles and names. A refused registration is 409 with
the stored registration's id (``registration``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Query, status
from fastapi.responses import JSONResponse

from recrm_core.api import CurrentActor, JsonBody

from .commission import CommissionEntry, Commissions
from .disputes import Dispute, DisputeIn, Disputes, ResolveIn
from .models import Registration, RegistrationIn, RegistrationState
from .service import Channels, RegistrationRefused

if TYPE_CHECKING:
    from recrm_core import CRM
    from recrm_core.api import ApiRoutes


def add_routes(crm: CRM, routes: ApiRoutes) -> None:
    channels = Channels(crm)
    api = routes.api

    @api.post("/registrations", response_model=Registration,
              status_code=status.HTTP_201_CREATED,
              responses={409: {"description": "refused; `registration` is the stored id"}})
    def register(body: JsonBody[RegistrationIn],
                 actor: CurrentActor) -> Registration | JSONResponse:
        """Register a customer's mobile for a project as the calling agent (报备)."""
        try:
            return channels.register(None, body.project, body.mobile, body.name, actor=actor)
        except RegistrationRefused as exc:
            return JSONResponse(
                {"type": "about:blank", "title": "Conflict", "status": 409,
                 "detail": str(exc), "registration": exc.registration.id},
                status_code=409, media_type="application/problem+json")

    @api.get("/registrations", response_model=list[Registration])
    def registrations(actor: CurrentActor,
                      state: Annotated[RegistrationState | None,
                                       Query(description="only this state")] = None,
                      ) -> list[Registration]:
        """The registrations of the caller's agency (partners), masked, as of now."""
        return channels.registrations(state=state, actor=actor)

    @api.get("/commissions", response_model=list[CommissionEntry])
    def commissions(actor: CurrentActor) -> list[CommissionEntry]:
        """The commission ledger of the caller's agency (partners), masked, oldest first:
        amounts are exact decimal strings."""
        return Commissions(crm).entries(actor=actor)

    @api.post("/disputes", response_model=Dispute, status_code=status.HTTP_201_CREATED)
    def open_dispute(body: JsonBody[DisputeIn], actor: CurrentActor) -> Dispute:
        """Dispute a registration: the caller's agency's refused, expired or released one,
        or (office staff, naming `agency`) another agency's that holds the customer."""
        return Disputes(crm).open(body.registration, body.note, agency=body.agency,
                                  actor=actor)

    @api.get("/disputes", response_model=list[Dispute])
    def disputes(actor: CurrentActor,
                 state: Annotated[Literal["open", "upheld", "dismissed"] | None,
                                  Query(description="only this state")] = None,
                 ) -> list[Dispute]:
        """Disputes, newest first (partners: their agency's)."""
        return Disputes(crm).list(state=state, actor=actor)

    @api.post("/disputes/{dispute}/resolve", response_model=Dispute)
    def resolve_dispute(dispute: int, body: JsonBody[ResolveIn], actor: CurrentActor) -> Dispute:
        """Uphold (re-attribute, move the commission) or dismiss an open dispute
        (managers)."""
        return Disputes(crm).resolve(dispute, uphold=body.uphold, note=body.note, actor=actor)
