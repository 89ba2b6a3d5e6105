"""Replies and bounces: what comes back turns into consent withdrawals and suppressions.

- An SMS reply ``T``, ``TD`` or ``退订`` (any case, spaces ignored) withdraws the
  sender's SMS marketing consent (source ``sms_reply``).
- ``recrm newsletter bounce ingest PATH``: RFC 3464 delivery reports (an mbox file or a
  directory of ``.eml``), RFC 5965 complaint reports, or JSON lines
  ``{"address", "type": "hard|soft|complaint", "at"}``. A hard bounce or a complaint
  suppresses the address at once; three soft bounces within 30 days do.
"""

from __future__ import annotations

import datetime as dt
import email
import hmac
import json
import mailbox
from collections.abc import Iterator
from email.message import Message as MailMessage
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from recrm_core import CRM, InvalidInput, NotFound, utcnow

from .models import BounceResult
from .service import Newsletter, address_hash, normalise_address
from .settings import settings
from .tables import BounceRow, RecipientRow

REFUSALS = {"T", "TD", "退订", "N"}
SOFT_LIMIT = 3
SOFT_WINDOW = dt.timedelta(days=30)


def handle_reply(crm: CRM, secret: str, sender: str, text: str) -> int:
    """Withdraw SMS marketing consent for ``sender`` when ``text`` refuses; how many
    customers it withdrew for. :class:`LookupError` for a wrong secret."""
    expected = settings(crm).inbound_secret
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise LookupError("unknown callback")
    if "".join(text.split()).upper() not in REFUSALS:
        return 0
    try:
        found = crm.customers.find(mobile=sender)
    except InvalidInput:
        return 0
    for customer in found:
        crm.consent.withdraw(customer.id, "sms", "marketing", source="sms_reply")
    return len(found)


def record_bounce(crm: CRM, channel: str, address: str, kind: str,
                  at: dt.datetime | None = None) -> bool:
    """Record one bounce or complaint; True when it suppressed the address."""
    if kind not in ("hard", "soft", "complaint"):
        raise InvalidInput("type", f"bounce type {kind!r} is not hard, soft or complaint")
    when = at or utcnow()
    digest = address_hash(crm, channel, address)
    news = Newsletter(crm)
    found = crm.customers.find(email=address) if channel == "email" \
        else crm.customers.find(mobile=address)
    with crm.unit_of_work() as uow:
        uow.session.add(BounceRow(channel=channel, address_hash=digest, kind=kind, at=when))
        uow.session.flush()
        softs = uow.session.scalar(select(func.count()).where(
            BounceRow.channel == channel, BounceRow.address_hash == digest,
            BounceRow.kind == "soft", BounceRow.at > when - SOFT_WINDOW)) or 0
        _mark_bounced(uow.session, channel, [c.id for c in found])
    if kind == "hard":
        return news.suppress(channel, address, "hard_bounce", at=when)
    if kind == "complaint":
        return news.suppress(channel, address, "complaint", at=when)
    if softs >= SOFT_LIMIT:
        return news.suppress(channel, address, "soft_bounces", at=when)
    return False


def _mark_bounced(session: Session, channel: str, ids: list[int]) -> None:
    """Mark the address's latest sent message as bounced (for the send's report)."""
    if not ids:
        return
    latest = session.scalar(select(func.max(RecipientRow.id)).where(
        RecipientRow.customer_id.in_(ids), RecipientRow.channel == channel,
        RecipientRow.state == "sent"))
    if latest is not None:
        session.execute(update(RecipientRow).where(RecipientRow.id == latest)
                        .values(bounced=True))


def ingest(crm: CRM, path: str | Path) -> BounceResult:
    """Read bounce and complaint reports from ``path`` (see the module)."""
    source = Path(path)
    if not source.exists():
        raise NotFound(f"no such file or directory: {str(path)!r}")
    reports = suppressed = unreadable = 0
    for found in _reports(source):
        if found is None:
            unreadable += 1
            continue
        channel, address, kind, at = found
        try:
            normalise_address(crm, channel, address)
        except InvalidInput:
            unreadable += 1
            continue
        reports += 1
        if record_bounce(crm, channel, address, kind, at):
            suppressed += 1
    return BounceResult(reports=reports, suppressed=suppressed, unreadable=unreadable)


Report = tuple[str, str, str, dt.datetime | None]


def _reports(source: Path) -> Iterator[Report | None]:
    if source.is_dir():
        for file in sorted(source.glob("*.eml")):
            yield from _from_mail(email.message_from_bytes(file.read_bytes()))
        return
    head = source.read_bytes()[:5]
    if head.startswith(b"From "):
        for mail in mailbox.mbox(str(source)):
            yield from _from_mail(mail)
        return
    if source.suffix == ".eml":
        yield from _from_mail(email.message_from_bytes(source.read_bytes()))
        return
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield _from_json(line)


def _from_json(line: str) -> Report | None:
    try:
        data = json.loads(line)
        address, kind = str(data["address"]), str(data["type"])
        at = dt.datetime.fromisoformat(data["at"]) if data.get("at") else None
    except (ValueError, KeyError, TypeError):
        return None
    if kind not in ("hard", "soft", "complaint"):
        return None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    channel = "email" if "@" in address else "sms"
    return channel, address, kind, at


def _from_mail(mail: MailMessage) -> Iterator[Report | None]:
    """The recipients an RFC 3464 report (or an RFC 5965 complaint) is about."""
    if mail.get_content_type() != "multipart/report":
        yield None
        return
    report_type = mail.get_param("report-type") or ""
    found = False
    for part in mail.walk():
        kind = part.get_content_type()
        if report_type == "feedback-report" and kind == "message/feedback-report":
            fields = _fields(part)
            address = fields.get("original-rcpt-to") or fields.get("removal-recipient")
            if address:
                found = True
                yield "email", address.strip(), "complaint", None
        elif kind == "message/delivery-status":
            for block in _status_blocks(part):
                recipient = block.get("final-recipient") or block.get("original-recipient")
                action = (block.get("action") or "").lower()
                status = (block.get("status") or "").strip()
                if not recipient or action not in ("failed", "delayed"):
                    continue
                address = recipient.split(";", 1)[-1].strip()
                found = True
                hard = action == "failed" and status.startswith("5")
                yield "email", address, "hard" if hard else "soft", None
    if not found:
        yield None


def _fields(part: MailMessage) -> dict[str, str]:
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else [email.message_from_string(
        str(payload))]
    out: dict[str, str] = {}
    for block in blocks:
        if isinstance(block, str):
            continue
        for key, value in block.items():
            out.setdefault(key.lower(), str(value))
    return out


def _status_blocks(part: MailMessage) -> list[dict[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package splits the status blocks
        return [{k.lower(): str(v) for k, v in block.items()} for block in payload
                if not isinstance(block, str)]
    text = payload if isinstance(payload, str) else ""
    return [{k.lower(): str(v) for k, v in email.message_from_string(chunk).items()}
            for chunk in text.split("\n\n") if chunk.strip()]
