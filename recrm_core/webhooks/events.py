"""Event types and the outbox writer.

An event is written in the unit of work of the change it describes, so it commits or
rolls back with it, and only when at least one subscription wants its type: the
subscriptions are read once per unit of work (one indexed read of a small table),
and an operation nobody listens to writes nothing more.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, insert, select

from ..db import utcnow
from ..errors import InvalidInput
from ..rawsql import RawSelect
from ..tables import WebhookDeliveryRow, WebhookEventRow, WebhookSubscriptionRow

if TYPE_CHECKING:
    from ..crm import CRM
    from ..db import UnitOfWork
    from ..models import Customer

#: the core's event types and when each is sent
CORE_EVENTS: dict[str, str] = {
    "customer.created": "a customer was created (by customers add, the API or an import)",
    "customer.updated": "a customer's profile changed (update, a record merged into it, "
                        "an import filling values)",
    "customer.merged": "a duplicate was merged into the customer",
    "stage.changed": "a customer's stage at a project changed (or a step for another unit)",
    "interaction.logged": "an interaction was added to a customer's timeline",
    "case.opened": "a service case was opened",
    "case.status_changed": "a service case moved to another status",
}
#: every type, for a subscription that wants them all
ALL = "*"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}\.[a-z][a-z0-9_]{0,31}")
_STATE = "recrm.webhooks.subscriptions"
_SUBSCRIPTIONS = RawSelect(cast(Any, select(WebhookSubscriptionRow.id,
                                            WebhookSubscriptionRow.events)))
_EVENTS = cast(Table, WebhookEventRow.__table__)
_DELIVERIES = cast(Table, WebhookDeliveryRow.__table__)


@dataclasses.dataclass(frozen=True)
class EventTypeInfo:
    description: str
    source: str


def event_types(crm: CRM) -> dict[str, EventTypeInfo]:
    """Every event type: the core's and those plugins registered through
    ``recrm_webhook_events`` (rebuilt when plugins come or go)."""
    plugins = len(crm.pm.get_plugins())
    cached: tuple[int, dict[str, EventTypeInfo]] | None = crm.__dict__.get("_webhook_events")
    if cached is not None and cached[0] == plugins:
        return cached[1]
    found = {name: EventTypeInfo(text, "core") for name, text in CORE_EVENTS.items()}

    def register(plugin: str, name: str, description: str) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"webhook event {name!r} is not named <plugin>.<event> in "
                             "lower-case letters, digits and _")
        if name.split(".", 1)[0] != plugin:
            raise ValueError(f"webhook event {name!r} must start with the plugin's name "
                             f"({plugin}.)")
        if name in found:
            raise ValueError(f"webhook event {name!r} is registered twice")
        found[name] = EventTypeInfo(str(description), plugin)

    crm.hooks.webhook_events(register)
    crm.__dict__["_webhook_events"] = (plugins, found)
    return found


def check_types(crm: CRM, names: Iterable[str]) -> list[str]:
    """``names`` as a subscription stores them (trimmed, each once, known or ``*``);
    InvalidInput naming the first unknown one."""
    known = event_types(crm)
    wanted: list[str] = []
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        if name != ALL and name not in known:
            raise InvalidInput("events", f"unknown event type {name!r} (known: "
                               f"{', '.join(sorted(known))}; or * for every type)")
        if name not in wanted:
            wanted.append(name)
    if not wanted:
        raise InvalidInput("events", "name at least one event type (or * for every type)")
    return [ALL] if ALL in wanted else wanted


def subscribers(uow: UnitOfWork, event_type: str) -> list[int]:
    """Ids of the subscriptions wanting ``event_type``, read once per unit of work."""
    subs: list[tuple[int, list[str]]] | None = uow.state.get(_STATE)
    if subs is None:
        rows = _SUBSCRIPTIONS.all(uow.driver, {})
        subs = uow.state[_STATE] = [(sid, list(events or [])) for sid, events in rows]
    return [sid for sid, events in subs if event_type in events or ALL in events]


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def body_of(event_id: str, event_type: str, at: dt.datetime, data: Any) -> str:
    """The document POSTed: ``{"id", "type", "created_at", "data"}``."""
    try:
        return json.dumps({"id": event_id, "type": event_type, "created_at": _timestamp(at),
                           "data": data}, ensure_ascii=False, separators=(",", ":"),
                          default=_default)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("data", f"event {event_type!r}: {exc}") from None


def write(uow: UnitOfWork, event_type: str,
          items: Sequence[tuple[int | None, Callable[[], Any]]]) -> list[str]:
    """Write one event of ``event_type`` per ``(customer_id, make_data)`` for the
    subscriptions wanting it (``make_data`` is called only then); their ids."""
    subs = subscribers(uow, event_type)
    if not subs or not items:
        return []
    at = utcnow()
    events: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for customer_id, make_data in items:
        event_id = f"evt_{uuid.uuid4().hex}"
        events.append({"id": event_id, "type": event_type, "customer_id": customer_id,
                       "body": body_of(event_id, event_type, at, make_data()),
                       "created_at": at})
        deliveries.extend({"event_id": event_id, "subscription_id": sid, "status": "pending",
                           "attempts": 0, "next_attempt_at": at, "created_at": at}
                          for sid in subs)
    conn = uow.connection
    conn.execute(insert(_EVENTS), events)
    conn.execute(insert(_DELIVERIES), deliveries)
    return [e["id"] for e in events]


def emit(uow: UnitOfWork, event_type: str, data: Any, *,
         customer_id: int | None = None) -> str | None:
    """Write one event in ``uow`` (see :meth:`WebhookService.emit`)."""
    if event_type not in event_types(uow.crm):
        raise InvalidInput("type", f"unknown webhook event type {event_type!r}: register it "
                           "with recrm_webhook_events")
    ids = write(uow, event_type, [(customer_id, lambda: data)])
    return ids[0] if ids else None


def customer_data(customer: Customer) -> dict[str, Any]:
    """A customer as events carry it: never the ID number (encrypted at rest, it is
    not copied in clear into an outbox and another system)."""
    return customer.model_dump(mode="json", exclude={"masked", "id_card"})
