"""``crm.webhooks``: subscriptions, the outbox and its delivery (docs/api.md#webhooks).

Delivery is at least once. Each pass claims one delivery at a time with a lease in
the database (``UPDATE ... WHERE locked_until IS NULL OR locked_until < now``, whose
row count says who won), sends it outside any transaction, then records the answer:
so any number of ``recrm webhook deliver`` processes never send one delivery at the
same time, and a process that dies mid-request leaves it to be claimed again when
its lease runs out (the receiver may then get it twice: it deduplicates on the
event's id).
"""

from __future__ import annotations

import builtins
import datetime as dt
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, exists, or_, select, update

from ..access import check_writer, require_role
from ..db import utcnow
from ..errors import InvalidInput, NotFound
from ..tables import WebhookDeliveryRow as Delivery
from ..tables import WebhookEventRow as Event
from ..tables import WebhookSubscriptionRow as Subscription
from ..values import optional_text
from . import events as _events
from . import secret_store
from .models import DeliveryRun, EventType, Webhook, WebhookCreated, WebhookDelivery
from .signing import SIGNATURE_HEADER, signature_header

if TYPE_CHECKING:
    from ..crm import CRM
    from ..db import UnitOfWork
    from ..models import Actor
    from .delivery import Answer

#: who may add, list and remove webhooks and see their deliveries
WEBHOOK_KEEPERS = ("admin",)
MAX_URL = 2000
#: deliveries claimed per query of a pass
_PAGE = 50
Sender = Callable[[str, bytes, dict[str, str], float], "Answer"]


def check_url(raw: str) -> str:
    """An http(s) URL with a host and without credentials (they would be listed)."""
    url = str(raw).strip()
    if not url:
        raise InvalidInput("url", "is empty")
    if len(url) > MAX_URL:
        raise InvalidInput("url", f"is longer than {MAX_URL} characters")
    if not url.isprintable() or any(ch.isspace() for ch in url):
        raise InvalidInput("url", "holds a space or a control character")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is no number raises here
    except ValueError:
        raise InvalidInput("url", f"{url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url", f"{url!r} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url", "holds credentials (user:password@); the signature "
                           "authenticates the requests")
    if parts.fragment:
        raise InvalidInput("url", "has a #fragment, which is never sent")
    return url


def _check_secret(secret: str) -> str:
    if not (secret_store.MIN_LENGTH <= len(secret) <= secret_store.MAX_LENGTH):
        raise InvalidInput("secret", f"must be {secret_store.MIN_LENGTH} to "
                           f"{secret_store.MAX_LENGTH} characters")
    if not secret.isascii() or not secret.isprintable() or " " in secret:
        raise InvalidInput("secret", "must be printable ASCII without spaces")
    return secret


def _webhook(row: Subscription) -> Webhook:
    return Webhook(id=row.id, url=row.url, events=list(row.events or []),
                   description=row.description, created_at=row.created_at)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class WebhookService:
    """Add, list and remove subscriptions; emit events; deliver them."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # -- event types ------------------------------------------------------------------
    def event_types(self) -> list[EventType]:
        """Every event type a subscription may name: the core's, then the plugins'."""
        return [EventType(name=name, description=info.description, source=info.source)
                for name, info in _events.event_types(self.crm).items()]

    def emit(self, uow: UnitOfWork, event_type: str, data: Any, *,
             customer_id: int | None = None) -> str | None:
        """Write an event inside ``uow`` (it is sent only if ``uow`` commits); its id,
        or None when no subscription wants ``event_type`` (nothing is written).
        ``data`` is JSON-serialisable (models, dates and datetimes are converted);
        ``customer_id`` names the person it is about, for erasure and export."""
        return _events.emit(uow, event_type, data, customer_id=customer_id)

    # -- subscriptions ----------------------------------------------------------------
    def add(self, url: str, events: Iterable[str] | str, *, secret: str | None = None,
            description: str | None = None, actor: Actor | None = None) -> WebhookCreated:
        """Subscribe ``url`` to ``events`` (names, or one comma-separated string; ``*``
        for every type). Without ``secret`` one is generated; either way it is stored
        encrypted and returned this once."""
        require_role(actor, WEBHOOK_KEEPERS, "manage webhooks")
        check_writer(actor)
        target = check_url(url)
        names = events.split(",") if isinstance(events, str) else list(events)
        wanted = _events.check_types(self.crm, names)
        generated = secret is None
        plain = secret_store.generate() if secret is None else _check_secret(secret)
        try:
            label = optional_text(description, 200)
        except ValueError as exc:
            raise InvalidInput("description", str(exc)) from None
        from ..idcards import keys_for_storing

        keys = keys_for_storing(self.crm)
        with self.crm.unit_of_work(actor) as uow:
            row = Subscription(url=target, events=wanted, description=label,
                               secret=secret_store.encrypt(keys, plain), created_at=utcnow())
            uow.session.add(row)
            uow.session.flush()
            self.crm.audit.record(uow, "webhook", details={
                "event": "add", "webhook": row.id, "host": _host(target), "events": wanted})
            return WebhookCreated(**_webhook(row).model_dump(), secret=plain,
                                  generated=generated)

    def list(self, actor: Actor | None = None) -> list[Webhook]:
        require_role(actor, WEBHOOK_KEEPERS, "list webhooks")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            return [_webhook(r) for r in
                    uow.session.scalars(select(Subscription).order_by(Subscription.id))]

    def remove(self, webhook_id: int, actor: Actor | None = None) -> Webhook:
        """Delete a subscription and its deliveries (pending ones are not sent), and
        the events no other subscription still has to receive."""
        require_role(actor, WEBHOOK_KEEPERS, "manage webhooks")
        check_writer(actor)
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = session.get(Subscription, webhook_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no such webhook {webhook_id}")
            gone = _webhook(row)
            theirs = select(Delivery.event_id).where(Delivery.subscription_id == webhook_id)
            event_ids = list(session.scalars(theirs))
            session.execute(delete(Delivery).where(Delivery.subscription_id == webhook_id))
            session.delete(row)
            session.flush()
            if event_ids:
                from ..db import chunks

                for chunk in chunks(event_ids):
                    session.execute(delete(Event).where(
                        Event.id.in_(chunk),
                        ~exists().where(Delivery.event_id == Event.id)))
            self.crm.audit.record(uow, "webhook", details={
                "event": "remove", "webhook": webhook_id, "host": _host(gone.url)})
            return gone

    def deliveries(self, actor: Actor | None = None, *, status: str | None = None,
                   webhook_id: int | None = None, limit: int = 100
                   ) -> builtins.list[WebhookDelivery]:
        """Deliveries, newest first: pending ones with their next attempt, delivered
        and failed ones until retention deletes them."""
        require_role(actor, WEBHOOK_KEEPERS, "list webhook deliveries")
        if status is not None and status not in ("pending", "delivered", "failed"):
            raise InvalidInput("status", f"unknown status {status!r} (pending, delivered, "
                               "failed)")
        query = (select(Delivery, Event.type, Subscription.url)
                 .join(Event, Event.id == Delivery.event_id)
                 .join(Subscription, Subscription.id == Delivery.subscription_id)
                 .order_by(Delivery.id.desc()).limit(max(1, limit)))
        if status is not None:
            query = query.where(Delivery.status == status)
        if webhook_id is not None:
            query = query.where(Delivery.subscription_id == webhook_id)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            return [WebhookDelivery(
                id=d.id, event_id=d.event_id, type=etype, subscription_id=d.subscription_id,
                url=url, status=d.status, attempts=d.attempts,
                next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                last_status=d.last_status, last_error=d.last_error, created_at=d.created_at,
                finished_at=d.finished_at) for d, etype, url in uow.session.execute(query)]

    # -- retention --------------------------------------------------------------------
    def prune(self, now: dt.datetime | None = None) -> int:
        """Delete the events (payloads and deliveries) whose every delivery finished
        more than ``webhooks.retention_days`` ago; how many events."""
        cutoff = (now or utcnow()) - dt.timedelta(days=self.crm.config.webhooks.retention_days)
        recent = exists().where(Delivery.event_id == Event.id,
                                or_(Delivery.finished_at.is_(None),
                                    Delivery.finished_at >= cutoff))
        done = select(Event.id).where(Event.created_at < cutoff, ~recent)
        with self.crm.unit_of_work() as uow:
            uow.session.execute(delete(Delivery).where(Delivery.event_id.in_(done)))
            result = uow.session.execute(delete(Event).where(
                Event.created_at < cutoff, ~exists().where(Delivery.event_id == Event.id)))
            return int(getattr(result, "rowcount", 0) or 0)

    # -- delivery ---------------------------------------------------------------------
    def backoff(self, attempts: int) -> dt.timedelta:
        """The wait after ``attempts`` failed attempts: the base, doubled each time,
        capped."""
        settings = self.crm.config.webhooks
        seconds = min(settings.retry_base_seconds * 2 ** min(attempts - 1, 40),
                      settings.retry_max_seconds)
        return dt.timedelta(seconds=seconds)

    def deliver(self, *, now: dt.datetime | None = None, limit: int | None = None,
                send: Sender | None = None) -> DeliveryRun:
        """One pass: prune past retention, then try every delivery due (at most
        ``limit`` requests), each once. ``now`` fixes the clock (tests); ``send``
        replaces the HTTP POST."""
        if send is None:
            from .delivery import post

            send = post
        run = DeliveryRun(pruned=self.prune(now))
        settings = self.crm.config.webhooks
        started = now or utcnow()
        secrets: dict[int, str] = {}
        last_id = 0
        while limit is None or run.attempted < limit:
            with self.crm.unit_of_work(readonly=True) as uow:
                due = list(uow.session.scalars(
                    select(Delivery.id).where(*self._claimable(started), Delivery.id > last_id)
                    .order_by(Delivery.id).limit(_PAGE)))
            if not due:
                break
            for delivery_id in due:
                last_id = delivery_id
                if limit is not None and run.attempted >= limit:
                    break
                at = now or utcnow()
                claimed = self._claim(delivery_id, at, settings.timeout_seconds)
                if claimed is None:
                    continue  # another process has it, or it changed meanwhile
                lease, sub_id, stored_secret, url, event_id, event_type, body, attempts = claimed
                if sub_id not in secrets:
                    secrets[sub_id] = secret_store.decrypt(self.crm.keys, stored_secret)
                payload = body.encode("utf-8")
                answer = send(url, payload, {
                    SIGNATURE_HEADER: signature_header(secrets[sub_id], payload),
                    "X-Recrm-Event": event_type, "X-Recrm-Event-Id": event_id,
                    "X-Recrm-Delivery": str(delivery_id),
                    "X-Recrm-Attempt": str(attempts + 1)}, settings.timeout_seconds)
                run.attempted += 1
                outcome = self._record(delivery_id, lease, attempts + 1, answer,
                                       now or utcnow())
                if outcome == "delivered":
                    run.delivered += 1
                elif outcome == "failed":
                    run.failed += 1
                elif outcome == "retrying":
                    run.retrying += 1
        return run

    def run(self, interval: float, *, passes: int | None = None,
            report: Callable[[DeliveryRun], None] | None = None) -> None:
        """Deliver in passes ``interval`` seconds apart, until interrupted (or
        ``passes`` ran)."""
        done = 0
        while passes is None or done < passes:
            result = self.deliver()
            done += 1
            if report is not None:
                report(result)
            if passes is None or done < passes:
                time.sleep(interval)

    @staticmethod
    def _claimable(at: dt.datetime) -> builtins.list[Any]:
        return [Delivery.status == "pending", Delivery.next_attempt_at <= at,
                or_(Delivery.locked_until.is_(None), Delivery.locked_until < at)]

    def _claim(self, delivery_id: int, at: dt.datetime, timeout: float
               ) -> tuple[dt.datetime, int, str, str, str, str, str, int] | None:
        """Take the lease of one delivery; what sending it needs, or None when another
        process holds it (or it is no longer due)."""
        lease = at + dt.timedelta(seconds=2 * timeout + 30)
        with self.crm.unit_of_work() as uow:
            result = uow.session.execute(
                update(Delivery).where(Delivery.id == delivery_id, *self._claimable(at))
                .values(locked_until=lease))
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return None
            row = uow.session.execute(
                select(Delivery.subscription_id, Subscription.secret, Subscription.url,
                       Event.id, Event.type, Event.body, Delivery.attempts)
                .join(Event, Event.id == Delivery.event_id)
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(Delivery.id == delivery_id)).one()
        return (lease, *row)

    def _record(self, delivery_id: int, lease: dt.datetime, attempts: int, answer: Answer,
                at: dt.datetime) -> str | None:
        """Store an attempt's outcome, if the lease is still ours: ``delivered``,
        ``retrying`` or ``failed``."""
        settings = self.crm.config.webhooks
        values: dict[str, Any] = {"attempts": attempts, "last_status": answer.status,
                                  "last_error": answer.error, "locked_until": None}
        if answer.ok:
            outcome = "delivered"
            values.update(status="delivered", finished_at=at)
        elif attempts >= settings.max_attempts:
            outcome = "failed"
            values.update(status="failed", finished_at=at)
        else:
            outcome = "retrying"
            values.update(next_attempt_at=at + self.backoff(attempts))
        with self.crm.unit_of_work() as uow:
            result = uow.session.execute(update(Delivery).where(
                Delivery.id == delivery_id, Delivery.status == "pending",
                Delivery.locked_until == lease).values(**values))
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return None  # removed meanwhile, or the lease ran out and was taken
        return outcome


__all__ = ["WEBHOOK_KEEPERS", "WebhookService", "check_url"]
