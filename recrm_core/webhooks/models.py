"""What ``crm.webhooks`` takes and returns."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from ..models import _Out

DeliveryStatus = Literal["pending", "delivered", "failed"]


class Webhook(_Out):
    """A subscription, without its secret."""

    id: int = Field(description="subscription id")
    url: str = Field(description="where events are POSTed")
    events: list[str] = Field(description="event types it receives (`*`: every type)")
    description: str | None = Field(default=None, description="what it is for")
    created_at: dt.datetime = Field(description="when it was added (UTC)")


class WebhookCreated(Webhook):
    """A new subscription and its secret, returned once: it is stored encrypted and
    never shown again."""

    secret: str = Field(description="the signing secret")
    generated: bool = Field(description="the secret was generated (not given)")


class EventType(_Out):
    """An event type subscriptions may name."""

    name: str = Field(description="`customer.created`, or a plugin's `<plugin>.<event>`")
    description: str = Field(description="when it is sent")
    source: str = Field(description="`core` or the plugin that registered it")


class WebhookDelivery(_Out):
    """One event for one subscription, as `recrm webhook deliveries` shows it."""

    id: int = Field(description="delivery id")
    event_id: str = Field(description="the event's id (the receiver's deduplication key)")
    type: str = Field(description="the event type")
    subscription_id: int = Field(description="the subscription")
    url: str = Field(description="the subscription's URL")
    status: DeliveryStatus = Field(description="pending, delivered or failed")
    attempts: int = Field(description="requests made so far")
    next_attempt_at: dt.datetime | None = Field(
        default=None, description="when a pending delivery is tried next (UTC)")
    last_status: int | None = Field(default=None,
                                    description="the HTTP status of the last answer")
    last_error: str | None = Field(default=None, description="why the last attempt failed")
    created_at: dt.datetime = Field(description="when the event was written (UTC)")
    finished_at: dt.datetime | None = Field(
        default=None, description="when it was delivered or given up (UTC)")


class DeliveryRun(_Out):
    """What one `recrm webhook deliver` pass did."""

    attempted: int = Field(default=0, description="requests made")
    delivered: int = Field(default=0, description="deliveries answered with a 2xx")
    retrying: int = Field(default=0, description="failed attempts that will be retried")
    failed: int = Field(default=0, description="deliveries given up after the last attempt")
    pruned: int = Field(default=0, description="events deleted after retention")
