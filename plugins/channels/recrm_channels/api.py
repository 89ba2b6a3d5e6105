"""``/v1/channels/...``: registrations for agencies' keys (``recrm_api_routes``).

Imported only by the hook, when the API app is built. A partner key registers as its
own agent (the key's staff id is the agent id) and lists its own agency's
registrations only, with masked mobiles and names. A refused registration is 409 with
the stored registration's id (``registration``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Query, status
from fastapi.responses import JSONResponse

from recrm_core.api import CurrentActor

from .commission import CommissionEntry, Commissions
from .models import Registration, RegistrationIn
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
    def register(body: RegistrationIn, actor: CurrentActor) -> Registration | JSONResponse:
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
                      state: str | None = Query(default=None, description="only this state"),
                      ) -> list[Registration]:
        """The registrations of the caller's agency (partners), masked, as of now."""
        return channels.registrations(state=state, actor=actor)

    @api.get("/commissions", response_model=list[CommissionEntry])
    def commissions(actor: CurrentActor) -> list[CommissionEntry]:
        """The commission ledger of the caller's agency (partners), masked, oldest first:
        amounts are exact decimal strings."""
        return Commissions(crm).entries(actor=actor)
