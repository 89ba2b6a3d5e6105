"""Replies and bounces: what comes back turns into consent withdrawals and suppressions.

- An SMS reply ``T``, ``TD``, ``N`` or ``退订`` (any case, spaces ignored) withdraws the
  sender's SMS marketing consent (source ``sms_reply``).
- ``recrm newsletter bounce ingest PATH``: RFC 3464 delivery reports (an mbox file or a
  directory of ``.eml``), RFC 5965 complaint reports, or JSON lines
  ``{"address", "type": "hard|soft|complaint", "at"}``. A hard bounce or a complaint
  suppresses the address at once; three soft bounces within 30 days do. A report is
  recorded once: read again (the same file twice, an mbox re-delivered), it is a no-op.
  Its identity is its ``Message-ID`` (or, without one, the whole report) for a mail,
  the line's fields (an ``id`` if it has one, the type and ``at``) for a JSON line.
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import hmac
import json
import mailbox
from collections.abc import Iterator
from email.message import Message as MailMessage
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from recrm_core import CRM, InvalidInput, NotFound, insert_or_ignore, utcnow
from recrm_core.regularfile import open_regular

from .models import BounceResult, UnreadableReport
from .service import Newsletter, address_hash, normalise_address
from .settings import NAME, settings
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
                  at: dt.datetime | None = None, report: str | None = None) -> bool:
    """Record one bounce or complaint; True when it suppressed the address.
    ``report``: the report's own identity (see :func:`report_key`); a report already
    recorded for the address is not recorded again (False, nothing changes)."""
    return _record(crm, channel, address, kind, at, report)[1]


def _record(crm: CRM, channel: str, address: str, kind: str, at: dt.datetime | None,
            report: str | None) -> tuple[bool, bool]:
    """(whether the report was new, whether it suppressed the address)."""
    if kind not in ("hard", "soft", "complaint"):
        raise InvalidInput("type", f"bounce type {kind!r} is not hard, soft or complaint")
    when = at or utcnow()
    digest = address_hash(crm, channel, address)
    key = report_key(crm, kind, report) if report is not None else None
    news = Newsletter(crm)
    found = crm.customers.find(email=address) if channel == "email" \
        else crm.customers.find(mobile=address)
    with crm.unit_of_work() as uow:
        if not insert_or_ignore(uow.session, BounceRow, {
                "channel": channel, "address_hash": digest, "kind": kind, "at": when,
                "report_key": key}, on=[BounceRow.channel, BounceRow.address_hash,
                                        BounceRow.report_key]):
            return False, False  # read before: a no-op
        softs = uow.session.scalar(select(func.count()).where(
            BounceRow.channel == channel, BounceRow.address_hash == digest,
            BounceRow.kind == "soft", BounceRow.at > when - SOFT_WINDOW)) or 0
        _mark_bounced(uow.session, channel, [c.id for c in found])
    if kind == "hard":
        return True, news.suppress(channel, address, "hard_bounce", at=when)
    if kind == "complaint":
        return True, news.suppress(channel, address, "complaint", at=when)
    if softs >= SOFT_LIMIT:
        return True, news.suppress(channel, address, "soft_bounces", at=when)
    return True, False


def report_key(crm: CRM, kind: str, identity: str) -> str:
    """What ``newsletter_bounces.report_key`` keeps of a report's identity: a keyed
    hash (a JSON line's identity holds the address)."""
    return crm.keys.keyed_hash(f"{NAME}.bounce", f"{kind}\x1f{identity}")


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
    """Read bounce and complaint reports from ``path`` (see the module). What is not a
    report is counted and named (``line 3``, ``1.eml``, ``message 2``) with its reason,
    so the sender of the file can fix it."""
    source = Path(path)
    if not source.exists():
        raise NotFound(f"no such file or directory: {str(path)!r}")
    if not (source.is_dir() or source.is_file()):  # a FIFO or a device would block
        raise InvalidInput("path", f"{str(path)!r} is neither a regular file nor a directory")
    reports = suppressed = already = 0
    unread: list[UnreadableReport] = []
    for where, found in _reports(source):
        if isinstance(found, str):
            unread.append(UnreadableReport(where=where, reason=found))
            continue
        channel, address, kind, at, identity = found
        try:
            normalise_address(crm, channel, address)
        except InvalidInput:
            # the reason leaves the address out: it is personal data, on that line
            unread.append(UnreadableReport(
                where=where, reason=f"the address is not a valid {_CHANNEL_NAMES[channel]}"))
            continue
        reports += 1
        new, suppressing = _record(crm, channel, address, kind, at, identity)
        already += not new
        suppressed += suppressing
    return BounceResult(reports=reports, suppressed=suppressed, unreadable=len(unread),
                        already_read=already, unreadable_reports=unread)


#: channel, address, kind, time, and the report's own identity
Report = tuple[str, str, str, dt.datetime | None, str]
#: where in the source (``line 3``, ``1.eml``, ``message 2``), and a report or why not
Found = tuple[str, Report | str]
_CHANNEL_NAMES = {"email": "email address", "sms": "mobile number"}


class _NotAFile(Exception):
    """A path that is no regular file (the core's rule: never read a FIFO or device)."""


def _read(path: Path) -> bytes:
    """``path``'s bytes, or _NotAFile: a FIFO would block, /dev/zero never ends."""
    with open_regular(str(path), _NotAFile) as fh:
        return fh.read()


def _reports(source: Path) -> Iterator[Found]:
    if source.is_dir():
        for file in sorted(source.glob("*.eml")):
            try:
                data = _read(file)
            except _NotAFile as exc:  # one entry of the folder, named with its reason
                yield file.name, str(exc).split(": ", 1)[-1]
                continue
            for found in _from_mail(email.message_from_bytes(data)):
                yield file.name, found
        return
    try:
        with open_regular(str(source), _NotAFile) as fh:
            head = fh.read(5)
            # an mbox is read by the mailbox module, message by message, not held whole
            content = b"" if head == b"From " else head + fh.read()
    except _NotAFile as exc:  # replaced since the look in ingest()
        raise InvalidInput("path", str(exc)) from None
    if head == b"From ":
        for number, mail in enumerate(mailbox.mbox(str(source)), 1):
            for found in _from_mail(mail):
                yield f"message {number}", found
        return
    if source.suffix == ".eml":
        for found in _from_mail(email.message_from_bytes(content)):
            yield source.name, found
        return
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # before any line is recorded
        raise InvalidInput("path", f"{source.name!r} is neither a mailbox nor UTF-8 JSON "
                           f"lines (byte {exc.start} is not UTF-8)") from None
    # split on newlines only: str.splitlines() also breaks at U+2028 and U+0085, which
    # JSON allows raw inside a string, and the numbers would not be an editor's lines
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield f"line {number}", _from_json(line)


def _from_json(line: str) -> Report | str:
    try:
        data = json.loads(line)
    except RecursionError:
        return "nested too deeply"
    except ValueError:
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    if not isinstance(data.get("address"), str | int) or isinstance(data["address"], bool):
        return 'no "address"'
    kind = data.get("type")
    if kind not in ("hard", "soft", "complaint"):
        return '"type" is not hard, soft or complaint'
    try:
        at = dt.datetime.fromisoformat(data["at"]) if data.get("at") else None
    except (ValueError, TypeError):
        return '"at" is not an ISO 8601 time'
    address = str(data["address"])
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    channel = "email" if "@" in address else "sms"
    # the line's own fields, spelled one way: the same line read again is the same report
    identity = "json\x1f" + json.dumps(data, sort_keys=True, ensure_ascii=False,
                                        default=str)
    return channel, address, kind, at, identity


def _from_mail(mail: MailMessage) -> Iterator[Report | str]:
    """The recipients an RFC 3464 report (or an RFC 5965 complaint) is about."""
    if mail.get_content_type() != "multipart/report":
        yield f"not a delivery or complaint report ({mail.get_content_type()})"
        return
    report_type = mail.get_param("report-type") or ""
    message_id = (mail.get("Message-ID") or "").strip()
    identity = f"mail\x1f{message_id}" if message_id else \
        "mail\x1f" + hashlib.sha256(mail.as_bytes()).hexdigest()
    found = False
    for part in mail.walk():
        kind = part.get_content_type()
        if report_type == "feedback-report" and kind == "message/feedback-report":
            fields = _fields(part)
            address = fields.get("original-rcpt-to") or fields.get("removal-recipient")
            if address:
                found = True
                yield "email", address.strip(), "complaint", None, identity
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
                yield "email", address, "hard" if hard else "soft", None, identity
    if not found:
        yield "names no failed or delayed recipient"


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
