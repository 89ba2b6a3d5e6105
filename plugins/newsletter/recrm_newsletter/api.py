"""``/v1/newsletter/...`` (send reports, for staff keys) and the SMS provider's reply
callback ``POST /nl/sms/{secret}`` (public; the shared secret is in the URL the
provider is given). Imported only by the hook, when the API app is built."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from recrm_core.api import CurrentActor, JsonBody

from .inbound import handle_reply
from .models import RunResult, Send, SendReport
from .outbox import Sender
from .service import Newsletter

if TYPE_CHECKING:
    from recrm_core import CRM
    from recrm_core.api import ApiRoutes


class InboundSms(BaseModel):
    """A reply the SMS provider forwards."""

    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from", max_length=32, description="the replying mobile")
    text: str = Field(max_length=1000, description="what they wrote")


class ScheduleIn(BaseModel):
    """When a send is due."""

    at: dt.datetime | None = Field(default=None, description="due time (default now)")


class InboundResult(BaseModel):
    """What a reply did."""

    unsubscribed: int = Field(description="customers whose SMS marketing consent it withdrew")


def add_routes(crm: CRM, routes: ApiRoutes) -> None:
    news = Newsletter(crm)

    @routes.api.get("/sends/{name}", response_model=SendReport)
    def send_report(name: str, actor: CurrentActor) -> SendReport:
        """A campaign's or issue's report: audience, skipped by reason, sent, failed."""
        from recrm_core import require_role

        require_role(actor, ("admin", "manager", "analyst"), "read send reports")
        return news.report(name)

    @routes.api.get("/sends", response_model=list[Send])
    def list_sends(actor: CurrentActor) -> list[Send]:
        """Every campaign and issue, oldest first, with its state."""
        from recrm_core import require_role

        require_role(actor, ("admin", "manager", "analyst"), "list sends")
        return news.sends()

    @routes.api.post("/sends/{name}/schedule", response_model=Send)
    def schedule_send(name: str, body: JsonBody[ScheduleIn], actor: CurrentActor) -> Send:
        """draft → scheduled, due at ``at`` (default now); a sender run starts it."""
        return news.schedule(name, body.at, actor=actor)

    @routes.api.post("/sends/{name}/{action}", response_model=Send)
    def move_send(name: str, action: Literal["pause", "resume", "cancel"],
                  actor: CurrentActor) -> Send:
        """Pause, resume or cancel a send (409 when its state does not allow it)."""
        sent: Send = getattr(news, action)(name, actor=actor)
        return sent

    @routes.api.post("/run", response_model=RunResult)
    def run_senders(actor: CurrentActor) -> RunResult:
        """Start what is due and continue what is sending (what ``recrm newsletter run``
        does), in this request."""
        return Sender(crm, actor=actor).run()

    @routes.public.post("/nl/sms/{secret}", response_model=InboundResult)
    def sms_reply(secret: str, body: JsonBody[InboundSms]) -> InboundResult:
        """The provider's reply callback: ``T``, ``TD`` or ``退订`` withdraws the
        sender's SMS marketing consent. A wrong secret is 404."""
        try:
            count = handle_reply(crm, secret, body.sender, body.text)
        except LookupError:
            raise HTTPException(status_code=404) from None
        return InboundResult(unsubscribed=count)
