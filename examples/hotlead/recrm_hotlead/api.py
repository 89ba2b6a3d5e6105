"""``GET /v1/hotlead/leads``: the hot leads over HTTP (``recrm_api_routes``).

A module of its own, imported by the hook only when the API app is built: FastAPI
stays out of every command's start-up, and the names the route's annotations use
(``CurrentActor``) are module globals, where FastAPI looks them up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recrm_core.api import CurrentActor

from . import HotLead, hot_leads

if TYPE_CHECKING:
    from recrm_core import CRM
    from recrm_core.api import ApiRoutes


def add_routes(crm: CRM, routes: ApiRoutes) -> None:
    @routes.api.get("/leads", response_model=list[HotLead])
    def leads(actor: CurrentActor) -> list[HotLead]:
        """Every hot lead, earliest first, masked as the key's role requires (a
        partner sees 李* and 138****5678)."""
        return hot_leads(crm, actor)
