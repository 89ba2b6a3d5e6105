"""Sending: the outbox, leases, and what is checked at send time.

1. **Fill.** A send's audience (saved segment or list ∩ consent for its channel and
   purpose ∩ has an address − erased or merged away) is evaluated in SQL and written
   to ``newsletter_recipients`` in keyset batches, one row per (send, customer,
   channel) under a UNIQUE constraint, before anything leaves. The send's row is
   locked while a batch is written, and ``audience_after`` records how far the fill
   got, so a fill interrupted anywhere resumes where it stopped.
2. **Claim.** A sender claims a batch of pending rows (or rows whose lease expired)
   in one committed UPDATE: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (two senders
   never take the same row, and do not wait for each other), the write lock
   (``BEGIN IMMEDIATE``) on SQLite.
3. **Check.** Inside the claim, every claimed customer is checked again: consent
   withdrawn, a suppression, erased or merged, no address, the frequency cap; such
   rows are ``skipped`` with the reason, never sent.
4. **Deliver.** Each claimed row's message carries a stable id (``Message-ID`` /
   ``Idempotency-Key``: the send's and the row's id), goes to ``crm.send_message``
   and the row is marked ``sent`` or ``failed`` — only if this sender still holds
   its lease.

The guarantee: nobody gets a message twice, except when a sender dies (or stalls past
its lease) between the server accepting a message and the row being marked: at most
one message per such sender, carrying the same id as the one sent before.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    Customer,
    DeliveryResult,
    InvalidInput,
    Message,
    consent_granted_clause,
    require_role,
    utcnow,
)
from recrm_core.tables import CustomerRow, IdentityRow

from .models import RunResult
from .service import SENDERS, Newsletter, address_hash, aware_utc, recipient_address
from .settings import NewsletterSettings
from .tables import ListMemberRow, RecipientRow, SegmentRow, SendRow, SuppressionRow

#: why a sending SMS send is waiting
QUIET = "quiet hours"
#: how far back the frequency cap counts
WEEK = dt.timedelta(days=7)


@dataclass
class _Tally:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    started: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def in_quiet_hours(conf: NewsletterSettings, now: dt.datetime, zone: Any) -> bool:
    """Whether ``now`` falls in the quiet hours (local time; a window may span
    midnight, as 21:00–08:00 does)."""
    window = conf.quiet_window()
    if window is None:
        return False
    start, end = window
    local = now.astimezone(zone).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def audience_clause(crm: CRM, session: Session, send: SendRow) -> ColumnElement[bool]:
    """SQL over ``CustomerRow``: who the send goes to, decided in the database."""
    if send.segment is not None:
        definition = session.scalar(select(SegmentRow.definition)
                                    .where(SegmentRow.name == send.segment))
        if definition is None:
            raise InvalidInput("segment", f"the saved segment {send.segment!r} is gone")
        members = crm.segments.compile(definition)
    else:
        members = exists().where(ListMemberRow.list_id == send.list_id,
                                 ListMemberRow.customer_id == CustomerRow.id)
    if send.channel == "email":
        address: ColumnElement[bool] = CustomerRow.email.is_not(None)
    else:
        address = exists().where(IdentityRow.customer_id == CustomerRow.id,
                                 IdentityRow.kind == "mobile")
    return and_(CustomerRow.merged_into.is_(None), CustomerRow.erased_at.is_(None), members,
                address, consent_granted_clause(CustomerRow.id, send.channel, send.purpose))


class Sender:
    """One sender process's view: ``Sender(crm).run()`` does what is due."""

    def __init__(self, crm: CRM, *, actor: Actor | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 deliver: Callable[[Message], DeliveryResult] | None = None) -> None:
        """``deliver`` replaces ``crm.send_message`` (the demo writes files with it)."""
        self.crm = crm
        self.deliver = deliver or crm.send_message
        self.actor = actor
        self.owner = str(uuid.uuid4())
        self.news = Newsletter(crm)
        self.conf = self.news.conf
        self.progress = progress
        self._last_send = 0.0
        # Loaded (and checked against the database) now, not inside a claim that
        # holds the write lock: the suppression check hashes addresses with it.
        _ = crm.keys

    # -- run -----------------------------------------------------------------------------
    def run(self, now: dt.datetime | None = None, only: str | None = None) -> RunResult:
        """Start the sends that are due, then continue every sending one (``only``:
        that send alone) until its outbox is empty, quiet hours or a pause stop it."""
        require_role(self.actor, SENDERS, "send newsletters")
        at = aware_utc(now)
        tally = _Tally()
        tally.started = self._start_due(at, only)
        sends = self._sending(only)
        try:
            for send_id, name in sends:
                self._send_one(send_id, name, at, tally)
        finally:
            # Also when a run is interrupted: what left before that is recorded (the
            # sends and the counts; no customer and no address).
            if tally.sent or tally.failed:
                self.crm.audit.append("bulk_send", actor=self.actor, details={
                    "plugin": "newsletter", "sends": [n for _, n in sends],
                    "sent": tally.sent, "failed": tally.failed, "skipped": tally.skipped})
        return RunResult(started=tally.started, sent=tally.sent, failed=tally.failed,
                         skipped=tally.skipped, waiting=tally.waiting)

    def _start_due(self, at: dt.datetime, only: str | None) -> list[str]:
        with self.crm.unit_of_work(self.actor) as uow:
            query = select(SendRow).where(SendRow.state == "scheduled",
                                          SendRow.scheduled_at <= at).with_for_update()
            if only is not None:
                query = query.where(SendRow.name == only)
            started = []
            for row in uow.session.scalars(query):
                row.state, row.started_at = "sending", at
                started.append(row.name)
            return started

    def _sending(self, only: str | None) -> list[tuple[int, str]]:
        with self.crm.unit_of_work(readonly=True) as uow:
            query = select(SendRow.id, SendRow.name).where(
                SendRow.state == "sending").order_by(SendRow.id)
            if only is not None:
                query = query.where(SendRow.name == only)
            return [(i, n) for i, n in uow.session.execute(query).all()]

    def _send_one(self, send_id: int, name: str, at: dt.datetime, tally: _Tally) -> None:
        self.fill(send_id)
        while True:
            with self.crm.unit_of_work(readonly=True) as uow:
                send = uow.session.get_one(SendRow, send_id)
                state, channel, note = send.state, send.channel, send.note
                uow.session.expunge(send)
            if state != "sending":
                return  # paused or cancelled meanwhile
            if channel == "sms" and in_quiet_hours(self.conf, at, self.crm.config.zone):
                if note != QUIET:
                    self._note(send_id, QUIET)
                tally.waiting.append(f"{name}: {QUIET}")
                return
            if note is not None:
                self._note(send_id, None)
            batch = self.claim(send_id, at, tally)
            if batch is None:
                self._finish_if_done(send_id, at)
                return
            extra = self.news.plugin_fields([c for _, c in batch])
            for recipient_id, customer in batch:
                self._deliver(send, recipient_id, customer, tally, extra.get(customer.id))

    def _note(self, send_id: int, note: str | None) -> None:
        with self.crm.unit_of_work(self.actor) as uow:
            uow.session.execute(update(SendRow).where(SendRow.id == send_id).values(note=note))

    # -- fill ----------------------------------------------------------------------------
    def fill(self, send_id: int) -> int:
        """Write the rest of the send's audience to the outbox; rows written."""
        written = 0
        size = self.conf.batch_size * 5
        while True:
            with self.crm.unit_of_work(self.actor) as uow:
                session = uow.session
                send = session.get_one(SendRow, send_id, with_for_update=True)
                if send.audience_done:
                    return written
                ids = list(session.scalars(
                    select(CustomerRow.id)
                    .where(audience_clause(self.crm, session, send),
                           CustomerRow.id > send.audience_after)
                    .order_by(CustomerRow.id).limit(size)))
                if ids:
                    # One multi-row statement; ON CONFLICT keeps a re-run harmless.
                    session.execute(_insert(session).on_conflict_do_nothing(), [
                        {"send_id": send_id, "customer_id": cid, "channel": send.channel,
                         "state": "pending", "bounced": False} for cid in ids])
                    written += len(ids)
                    send.audience_after = ids[-1]
                send.audience_done = len(ids) < size

    # -- claim ---------------------------------------------------------------------------
    def claim(self, send_id: int, at: dt.datetime,
              tally: _Tally) -> list[tuple[int, Customer]] | None:
        """Claim the next batch (None when nothing is left to claim); rows that must not
        be sent are skipped here, with the reason."""
        while True:
            with self.crm.unit_of_work(self.actor) as uow:
                session = uow.session
                send = session.get_one(SendRow, send_id)
                if send.state != "sending":
                    return None
                free = or_(RecipientRow.state == "pending",
                           and_(RecipientRow.state == "claimed", RecipientRow.lease_until < at))
                # Wall-clock lease: a sender passing `now` from the past still holds
                # its batch for lease_seconds of real time.
                until = max(at, utcnow()) + dt.timedelta(seconds=self.conf.lease_seconds)
                pick = (select(RecipientRow.id)
                        .where(RecipientRow.send_id == send_id, free)
                        .order_by(RecipientRow.id).limit(self.conf.batch_size)
                        .with_for_update(skip_locked=True))
                claimed = session.execute(
                    update(RecipientRow).where(RecipientRow.id.in_(pick.scalar_subquery()))
                    .values(state="claimed", lease_owner=self.owner, lease_until=until)
                    .returning(RecipientRow.id, RecipientRow.customer_id)
                    .execution_options(synchronize_session=False)).all()
                if not claimed:
                    return None
                batch = self._checked(session, send, dict(claimed), at, tally)
            if batch:
                return batch
            # everything in this batch was skipped: claim the next one

    def _checked(self, session: Session, send: SendRow, claimed: dict[int, int | None],
                 at: dt.datetime, tally: _Tally) -> list[tuple[int, Customer]]:
        crm = self.crm
        ids = [c for c in claimed.values() if c is not None]
        allowed = set(session.scalars(select(CustomerRow.id).where(
            CustomerRow.id.in_(ids), CustomerRow.merged_into.is_(None),
            CustomerRow.erased_at.is_(None))))
        consented = set(session.scalars(select(CustomerRow.id).where(
            CustomerRow.id.in_(ids),
            consent_granted_clause(CustomerRow.id, send.channel, send.purpose))))
        capped: set[int] = set()
        if self.conf.max_messages_per_week:
            capped = set(session.scalars(
                select(RecipientRow.customer_id)
                .where(RecipientRow.customer_id.in_(ids), RecipientRow.channel == send.channel,
                       RecipientRow.state == "sent", RecipientRow.sent_at > at - WEEK)
                .group_by(RecipientRow.customer_id)
                .having(func.count() >= self.conf.max_messages_per_week)))
        customers = {c.id: c for c in crm.customers.get_many(sorted(allowed & consented))} \
            if allowed & consented else {}
        hashes = {cid: address_hash(crm, send.channel, addr) for cid, c in customers.items()
                  if (addr := recipient_address(c, send.channel))}
        suppressed = set(session.scalars(select(SuppressionRow.address_hash).where(
            SuppressionRow.channel == send.channel,
            SuppressionRow.address_hash.in_(list(hashes.values()))))) if hashes else set()
        batch: list[tuple[int, Customer]] = []
        for recipient_id, cid in claimed.items():
            reason = None
            if cid is None or cid not in allowed:
                reason = "erased_or_merged"
            elif cid not in consented:
                reason = "consent_withdrawn"
            elif cid not in hashes:
                reason = "no_address"
            elif hashes[cid] in suppressed:
                reason = "suppressed"
            elif cid in capped:
                reason = "frequency_cap"
            if reason is None:
                batch.append((recipient_id, customers[cid]))  # type: ignore[index]
                continue
            tally.skipped += 1
            session.execute(update(RecipientRow)
                            .where(RecipientRow.id == recipient_id,
                                   RecipientRow.lease_owner == self.owner)
                            .values(state="skipped", reason=reason, lease_until=None)
                            .execution_options(synchronize_session=False))
        return batch

    # -- deliver -------------------------------------------------------------------------
    def message_id(self, send: SendRow, recipient_id: int) -> str:
        domain = self.conf.from_address.rpartition("@")[2] or "localhost"
        if send.channel == "email":
            return f"<nl.{send.id}.{recipient_id}@{domain}>"
        return f"nl-{send.id}-{recipient_id}"

    def _deliver(self, send: SendRow, recipient_id: int, customer: Customer,
                 tally: _Tally, extra: dict[str, Any] | None = None) -> None:
        self._pace()
        to = recipient_address(customer, send.channel) or ""
        message_id = self.message_id(send, recipient_id)
        try:
            message = self.news.message_for(customer, send, to, message_id, send.subject,
                                            send.html, send.text, extra)
            result = self.deliver(message)
            ok, transport, detail = result.ok, result.transport, result.detail
        except Exception as exc:  # one broken message must not stop the batch
            ok, transport, detail = False, None, f"{type(exc).__name__}: {exc}"
        with self.crm.unit_of_work(self.actor) as uow:
            uow.session.execute(
                update(RecipientRow)
                .where(RecipientRow.id == recipient_id, RecipientRow.state == "claimed",
                       RecipientRow.lease_owner == self.owner)
                .values(state="sent" if ok else "failed", message_id=message_id,
                        transport=transport, detail=(detail or "")[:300] or None,
                        sent_at=utcnow() if ok else None, lease_until=None,
                        reason=None if ok else "transport")
                .execution_options(synchronize_session=False))
        if ok:
            tally.sent += 1
        else:
            tally.failed += 1
        if self.progress is not None:
            self.progress(send.name, tally.sent + tally.failed, tally.skipped)

    def _pace(self) -> None:
        if self.conf.rate_limit <= 0:
            return
        gap = 1.0 / self.conf.rate_limit
        wait = self._last_send + gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_send = time.monotonic()

    def _finish_if_done(self, send_id: int, at: dt.datetime) -> None:
        with self.crm.unit_of_work(self.actor) as uow:
            session = uow.session
            send = session.get_one(SendRow, send_id, with_for_update=True)
            if send.state != "sending" or not send.audience_done:
                return
            open_rows = session.scalar(select(func.count()).where(
                RecipientRow.send_id == send_id,
                RecipientRow.state.in_(("pending", "claimed")))) or 0
            if open_rows == 0:
                send.state, send.finished_at, send.note = "sent", max(at, utcnow()), None
            elif send.note:
                send.note = None


def _insert(session: Session) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(RecipientRow)
    return sqlite.insert(RecipientRow)
