"""Sending the due invitations through the outbox, and expiring the old."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import (
    update,
)

from recrm_core import (
    CRM,
    Actor,
    Customer,
    Message,
    RecrmError,
    utcnow,
)
from recrm_core.access import require_role

from ..definitions import SurveyDefinition
from ..settings import SurveySettings, settings
from ..tables import SurveyInvitation
from .clock import _aware
from .inviting import _due_clause, consent_blocks, due
from .records import BULK_SEND, SENDERS, STAFF, Invitation, SendResult
from .surveys import get_definition


def expire(crm: CRM, *, now: dt.datetime | None = None, actor: Actor | None = None) -> int:
    """Mark pending invitations whose window closed as expired; how many."""
    require_role(actor, STAFF, "expire survey invitations")
    at = _aware(now, "now")
    with crm.unit_of_work(actor) as uow:
        result = uow.session.execute(
            update(SurveyInvitation)
            .where(SurveyInvitation.status == "pending", SurveyInvitation.expires_at <= at)
            .values(status="expired")
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _claim(crm: CRM, invitation_id: int, now: dt.datetime,
           actor: Actor | None = None) -> tuple[str, SurveyInvitation | None]:
    """Claim one invitation for sending, committed before anything is sent.

    The conditional UPDATE is the lock: of two senders only one sees rowcount 1
    (PostgreSQL re-checks the WHERE after waiting for the other's row lock; SQLite
    has one writer). A claimed invitation is never claimed again, so a crash after
    the claim loses at most that one message instead of sending it twice.
    """
    with crm.unit_of_work(actor) as uow:
        session = uow.session
        result = session.execute(
            update(SurveyInvitation)
            .where(SurveyInvitation.id == invitation_id, _due_clause(now))
            .values(status="sending", claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return "skipped", None
        row = session.get_one(SurveyInvitation, invitation_id)
        session.refresh(row)
        if consent_blocks(uow, row.customer_id, row.channel):
            row.status, row.detail = "cancelled", "consent withdrawn before sending"
            return "cancelled", None
        session.expunge(row)
        return "claimed", row


def _finish(crm: CRM, invitation_id: int, status: str, actor: Actor | None = None,
            **values: Any) -> None:
    with crm.unit_of_work(actor) as uow:
        uow.session.execute(
            update(SurveyInvitation)
            .where(SurveyInvitation.id == invitation_id, SurveyInvitation.status == "sending")
            .values(status=status, **values)
            .execution_options(synchronize_session=False)
        )


def _recipient(customer: Customer, channel: str) -> str | None:
    if channel == "email":
        return customer.email
    return customer.mobiles[0] if customer.mobiles else None


def survey_link(crm: CRM, token: str, conf: SurveySettings | None = None) -> str:
    """The link of an invitation's survey: ``link_template`` with its ``{token}`` and
    ``{base}`` (the core's ``public_base_url``) filled in."""
    conf = conf or settings(crm)
    return conf.link_template.format(token=token, base=crm.config.public_base_url)


def invitation_message(
    crm: CRM, row: SurveyInvitation | Invitation, customer: Customer,
    definition: SurveyDefinition, conf: SurveySettings,
) -> Message | None:
    """The message for one invitation, or None when the customer has no address
    on the invitation's channel."""
    to = _recipient(customer, row.channel)
    if to is None:
        return None
    token = row.token
    survey = row.survey_key if isinstance(row, SurveyInvitation) else row.survey
    expires = row.expires_at.astimezone(crm.config.zone).strftime("%Y-%m-%d")
    body = definition.invitation_text.format(
        name=customer.name or "尊敬的业主", title=definition.title,
        link=survey_link(crm, token, conf), project=row.project or "",
        expires=expires,
    )
    return Message(
        channel=row.channel,
        to=to, subject=definition.title, body=body, customer_id=customer.id,
        headers={"X-Recrm-Survey": survey, "X-Recrm-Invitation": str(row.id)},
    )


def send_due(
    crm: CRM, *, limit: int | None = None, now: dt.datetime | None = None,
    actor: Actor | None = None,
) -> SendResult:
    """Send every due invitation (at most ``limit``) through ``crm.send_message``.

    Each invitation is claimed in its own committed transaction before delivery
    and marked ``sent`` (or ``failed``) afterwards, so a re-run, a crash or a second
    sender at the same moment never sends one twice. A transport that raises or
    answers ``ok=False`` marks the invitation ``failed`` with the reason; it is not
    retried automatically (the message may have left).

    Only an admin (or the integrator's code, ``actor`` None) sends: a message needs
    its recipient's name and address in full. A run that sent or failed anything
    appends one ``bulk_send`` entry to the audit log: the surveys and the counts,
    no customer and no address.
    """
    require_role(actor, SENDERS, "send surveys")
    at = _aware(now, "now")
    result = SendResult(expired=expire(crm, now=at, actor=actor))
    conf = settings(crm)
    candidates = [i.id for i in due(crm, now=at, limit=limit, actor=actor)]
    per_survey: dict[str, dict[str, int]] = {}
    try:
        for invitation_id in candidates:
            state, row = _claim(crm, invitation_id, at, actor)
            if row is None:
                if state == "cancelled":
                    result.cancelled += 1
                else:
                    result.skipped += 1
                continue
            counts = per_survey.setdefault(row.survey_key, {"sent": 0, "failed": 0})
            outcome = _deliver(crm, row, conf, actor)
            counts[outcome] += 1
            if outcome == "sent":
                result.sent += 1
                result.invitation_ids.append(row.id)
            else:
                result.failed += 1
    finally:
        # Also when a run is interrupted: what left before that is recorded.
        if result.sent or result.failed:
            crm.audit.append(BULK_SEND, actor=actor, details={
                "plugin": "survey", "surveys": sorted(per_survey),
                "sent": result.sent, "failed": result.failed,
                "cancelled": result.cancelled, "expired": result.expired,
                "skipped": result.skipped, "by_survey": per_survey,
            })
    return result


def _deliver(crm: CRM, row: SurveyInvitation, conf: SurveySettings,
             actor: Actor | None) -> Literal["sent", "failed"]:
    """Deliver one claimed invitation and mark it ``sent`` or ``failed``."""
    # The recipient in full (no actor): the message goes to the real address.
    customer = crm.customers.get(row.customer_id)
    message = invitation_message(crm, row, customer, get_definition(crm, row.survey_key), conf)
    if message is None:
        _finish(crm, row.id, "failed", actor,
                detail=f"customer has no {row.channel} address")
        return "failed"
    try:
        delivery = crm.send_message(message)
    except Exception as exc:  # one broken message must not stop the batch
        # A PluginError already names the transport plugin and the cause.
        why = str(exc) if isinstance(exc, RecrmError) else f"{type(exc).__name__}: {exc}"
        _finish(crm, row.id, "failed", actor, detail=why[:300])
        return "failed"
    if delivery.ok:
        _finish(crm, row.id, "sent", actor, sent_at=utcnow(), transport=delivery.transport,
                detail=delivery.detail)
        return "sent"
    _finish(crm, row.id, "failed", actor, transport=delivery.transport,
            detail=(delivery.detail or "the transport refused it")[:300])
    return "failed"
