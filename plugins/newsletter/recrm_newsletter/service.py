"""Saved segments, static lists, campaigns, the magazine's issues and suppressions.

Sending lives in :mod:`recrm_newsletter.outbox`; this module holds the definitions
and the state machine (draft → scheduled → sending → sent, or paused, cancelled).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    CUSTOMER_COLUMNS,
    Actor,
    Customer,
    DeliveryResult,
    ErrorsFile,
    InvalidInput,
    Message,
    NotFound,
    Refused,
    RejectedRow,
    Vocabulary,
    insert_or_ignore,
    normalise_email,
    normalise_mobile,
    open_table,
    require_role,
    unsubscribe_url,
    utcnow,
)

from .content import POLITE_NAME, check_way_out, render, sms_text
from .models import Send, SendReport, Suppression
from .settings import NAME, NewsletterSettings, settings
from .tables import (
    ListMemberRow,
    ListRow,
    PublicationRow,
    RecipientRow,
    SegmentRow,
    SendRow,
    SuppressionRow,
)

#: who may define and send (a message needs the recipient's address in full)
SENDERS = ("admin", "manager")
#: the fields a list row names its customer by
_LIST_KEYS = ("mobile", "mobiles", "id_card")
CHANNELS = ("email", "sms")
#: the magazine's consent purpose (campaigns use the core's ``marketing``)
PURPOSE = NAME
FINAL = ("sent", "cancelled")
#: the unsubscribe token of a test message: not a signed token, so the page answers
#: 404 and nobody's consent is withdrawn
TEST_TOKEN = "TEST-MESSAGE-NO-UNSUBSCRIBE"


def _name(value: object, what: str, limit: int = 64) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(what, f"{what} must not be empty")
    text = value.strip()
    if len(text) > limit or any(ord(c) < 32 for c in text):
        raise InvalidInput(what, f"{what} must be one line of at most {limit} characters")
    return text


def _channel(value: str) -> str:
    if value not in CHANNELS:
        raise InvalidInput("channel", f"channel {value!r} is not one of email, sms")
    return value


def aware_utc(value: dt.datetime | None) -> dt.datetime:
    """``value`` in UTC (now when None); a naive time is refused."""
    if value is None:
        return utcnow()
    if value.tzinfo is None:
        raise InvalidInput("now", "a time needs its time zone")
    return value.astimezone(dt.UTC)


def address_hash(crm: CRM, channel: str, address: str) -> str:
    """The keyed hash a suppression or bounce keeps of an address (normalised first)."""
    return crm.keys.keyed_hash(f"{NAME}.{channel}", normalise_address(crm, channel, address))


def normalise_address(crm: CRM, channel: str, address: str) -> str:
    try:
        if channel == "email":
            return normalise_email(address)
        return normalise_mobile(address, crm.config.default_region)
    except Exception as exc:  # IdentityError: a person's typing, not a bug
        raise InvalidInput("address", f"{address!r} is not a valid {channel} address") from exc


def recipient_address(customer: Customer, channel: str) -> str | None:
    if channel == "email":
        return customer.email
    return customer.mobiles[0] if customer.mobiles else None


class Newsletter:
    """``recrm_newsletter.service(crm)``: everything the CLI and the API do."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    @property
    def conf(self) -> NewsletterSettings:
        return settings(self.crm)

    # -- saved segments ------------------------------------------------------------------
    def save_segment(self, name: str, definition: Mapping[str, Any],
                     actor: Actor | None = None) -> None:
        """Save (or replace) a segment definition under ``name``; checked first."""
        require_role(actor, SENDERS, "save segments")
        name = _name(name, "segment name")
        self.crm.segments.compile(definition)  # InvalidInput naming the place
        with self.crm.unit_of_work(actor) as uow:
            row = uow.session.get(SegmentRow, name)
            if row is None:
                uow.session.add(SegmentRow(name=name, definition=dict(definition),
                                           created_at=utcnow()))
            else:
                row.definition = dict(definition)

    def segments(self) -> dict[str, dict[str, Any]]:
        with self.crm.unit_of_work(readonly=True) as uow:
            return {r.name: r.definition for r in
                    uow.session.scalars(select(SegmentRow).order_by(SegmentRow.name))}

    def segment(self, name: str) -> dict[str, Any]:
        found = self.segments().get(name)
        if found is None:
            raise NotFound(f"no saved segment {name!r}")
        return found

    def count_segment(self, name: str, actor: Actor | None = None) -> int:
        return self.crm.segments.count(self.segment(name), actor=actor)

    # -- static lists --------------------------------------------------------------------
    def import_list(self, name: str, path: str | Path, actor: Actor | None = None,
                    errors_path: str | Path | None = None) -> dict[str, Any]:
        """Add the customers a CSV or XLSX file names (by mobile or ID card, resolved as
        the core resolves identities) to list ``name``; rows naming nobody are counted,
        not added. Idempotent: a row already on the list is not added twice. Columns
        the customer import does not know (备注) are ignored and named in
        ``ignored_columns``. A row the file cannot give (an invalid mobile or ID card, a
        cell beyond the header) is rejected with its number, field and reason in
        ``rejections`` (and ``errors_path``), not counted as naming nobody; a file
        without a mobile or ID-card column is refused before the list is made."""
        require_role(actor, SENDERS, "import lists")
        name = _name(name, "list name")
        counts: dict[str, Any] = {"rows": 0, "added": 0, "unknown": 0, "rejected": 0}
        rejections: list[RejectedRow] = []
        columns = _ListColumns()
        with open_table(path, columns) as source, ExitStack() as stack:
            fed = set(source.header.fields.values())
            if not fed & set(_LIST_KEYS):
                # Every name is a column here (unknown ones are ignored), so the first
                # row is the header: a title row above it lands here too.
                raise InvalidInput("file", f"{source.path!r} has no mobile or ID-card column"
                                   " (手机 / 身份证) in its first row ("
                                   + ", ".join(columns.ignored) + "); nobody on it could"
                                   " be found, and a list's file starts with its header")
            errors = stack.enter_context(ErrorsFile(
                errors_path, sheet_rows=source.sheet is not None)) if errors_path else None
            with self.crm.unit_of_work(actor) as uow:
                list_id = insert_or_ignore(uow.session, ListRow,
                                           {"name": name, "created_at": utcnow()},
                                           on=[ListRow.name], returning=ListRow.id)
                if list_id is None:
                    list_id = uow.session.scalar(select(ListRow.id)
                                                 .where(ListRow.name == name))
            for line, row in source:
                counts["rows"] += 1
                if not isinstance(row, dict):
                    bad = row
                else:
                    try:
                        customer = self._resolve(row)
                    except InvalidInput as exc:
                        bad = RejectedRow(row=line, field=exc.field, reason=exc.reason,
                                          sheet_row=source.sheet_row)
                    else:
                        if customer is None:
                            counts["unknown"] += 1
                            continue
                        with self.crm.unit_of_work(actor) as uow:
                            if insert_or_ignore(
                                    uow.session, ListMemberRow,
                                    {"list_id": list_id, "customer_id": customer},
                                    on=[ListMemberRow.list_id, ListMemberRow.customer_id]):
                                counts["added"] += 1
                        continue
                counts["rejected"] += 1
                rejections.append(bad)
                if errors is not None:
                    errors.write(bad)
        return {**counts, "ignored_columns": columns.ignored, "rejections": rejections}

    def _resolve(self, row: Mapping[str, Any]) -> int | None:
        """The customer the row names, or None; InvalidInput for a value that is no
        mobile or ID card at all (a typo to fix, not a stranger)."""
        mobiles = row.get("mobiles", row.get("mobile"))
        for mobile in mobiles if isinstance(mobiles, list) else [mobiles]:
            if mobile:
                found = self.crm.customers.find(mobile=str(mobile))
                if found:
                    return found[0].id
        if row.get("id_card"):
            found = self.crm.customers.find(id_card=str(row["id_card"]))
            if found:
                return found[0].id
        return None

    def list_size(self, name: str) -> int:
        with self.crm.unit_of_work(readonly=True) as uow:
            list_id = self._list_id(uow.session, name)
            return uow.session.scalar(select(func.count()).where(
                ListMemberRow.list_id == list_id)) or 0

    def _list_id(self, session: Session, name: str) -> int:
        found = session.scalar(select(ListRow.id).where(ListRow.name == name))
        if found is None:
            raise NotFound(f"no list {name!r}")
        return found

    # -- campaigns and the magazine ------------------------------------------------------
    def create_campaign(
        self, name: str, *, channel: str, segment: str | None = None,
        list_name: str | None = None, purpose: str = "marketing", subject: str | None = None,
        html: str | None = None, text: str | None = None, actor: Actor | None = None,
    ) -> Send:
        """A draft campaign to a saved segment or a static list."""
        require_role(actor, SENDERS, "create campaigns")
        return self._create(_name(name, "campaign name", 100), "campaign", None, None,
                            _channel(channel), purpose, segment, list_name, subject, html,
                            text, actor)

    def create_publication(self, code: str, title: str, channel: str,
                           actor: Actor | None = None) -> None:
        require_role(actor, SENDERS, "create publications")
        code, title = _name(code, "publication code"), _name(title, "title", 200)
        with self.crm.unit_of_work(actor) as uow:
            if not insert_or_ignore(uow.session, PublicationRow, {
                    "code": code, "title": title, "channel": _channel(channel),
                    "created_at": utcnow()}, on=[PublicationRow.code]):
                raise Refused(f"publication {code!r} exists")

    def create_issue(
        self, code: str, number: int, *, segment: str | None = None,
        list_name: str | None = None, subject: str | None = None, html: str | None = None,
        text: str | None = None, actor: Actor | None = None,
    ) -> Send:
        """Issue ``number`` of publication ``code``, as a draft (``CODE#N``), sent under
        the ``newsletter`` consent purpose."""
        require_role(actor, SENDERS, "create issues")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 10**6:
            raise InvalidInput("number", f"{number!r} is not an issue number")
        with self.crm.unit_of_work(readonly=True) as uow:
            pub = uow.session.get(PublicationRow, code)
            if pub is None:
                raise NotFound(f"no publication {code!r}")
            channel = pub.channel
        if segment is None and list_name is None:
            raise InvalidInput("segment", "an issue goes to a saved segment or a list")
        return self._create(f"{code}#{number}", "issue", code, number, channel, PURPOSE,
                            segment, list_name, subject, html, text, actor)

    def _create(self, name: str, kind: str, publication: str | None, number: int | None,
                channel: str, purpose: str, segment: str | None, list_name: str | None,
                subject: str | None, html: str | None, text: str | None,
                actor: Actor | None) -> Send:
        self.crm.consent.check(channel, purpose)
        if (segment is None) == (list_name is None):
            raise InvalidInput("segment", "give a saved segment or a list, not both")
        if segment is not None:
            self.segment(segment)
        check_way_out(channel, subject, html, text, self._sample_fields(), self.conf.sms_refusal)
        with self.crm.unit_of_work(actor) as uow:
            list_id = self._list_id(uow.session, list_name) if list_name else None
            send_id = insert_or_ignore(uow.session, SendRow, {
                "name": name, "kind": kind, "publication": publication,
                "issue_number": number, "channel": channel, "purpose": purpose,
                "segment": segment, "list_id": list_id, "subject": subject, "html": html,
                "text": text, "state": "draft", "created_at": utcnow(),
                "audience_after": 0, "audience_done": False,
            }, on=[SendRow.name], returning=SendRow.id)
            if send_id is None:
                raise Refused(f"{kind} {name!r} exists")
        return self.get(name)

    def get(self, name: str) -> Send:
        with self.crm.unit_of_work(readonly=True) as uow:
            return self._model(uow.session, self._row(uow.session, name))

    def sends(self, publication: str | None = None) -> list[Send]:
        with self.crm.unit_of_work(readonly=True) as uow:
            query = select(SendRow).order_by(SendRow.id)
            if publication is not None:
                if uow.session.get(PublicationRow, publication) is None:
                    raise NotFound(f"no publication {publication!r}")
                query = query.where(SendRow.publication == publication).order_by(
                    None).order_by(SendRow.issue_number)
            return [self._model(uow.session, r) for r in uow.session.scalars(query)]

    def _row(self, session: Session, name: str, lock: bool = False) -> SendRow:
        query = select(SendRow).where(SendRow.name == name)
        row = session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFound(f"no campaign or issue {name!r}")
        return row

    @staticmethod
    def _model(session: Session, row: SendRow) -> Send:
        list_name = session.scalar(select(ListRow.name).where(ListRow.id == row.list_id)) \
            if row.list_id else None
        return Send(id=row.id, name=row.name, kind=row.kind,
                    publication=row.publication, issue_number=row.issue_number,
                    channel=row.channel, purpose=row.purpose, segment=row.segment,
                    list_name=list_name, subject=row.subject,
                    state=row.state,
                    note=row.note, scheduled_at=row.scheduled_at, started_at=row.started_at,
                    finished_at=row.finished_at)

    # -- the state machine -----------------------------------------------------------------
    def schedule(self, name: str, at: dt.datetime | None = None,
                 actor: Actor | None = None) -> Send:
        """draft → scheduled (due at ``at``, default now); ``run`` starts it."""
        require_role(actor, SENDERS, "schedule sends")
        when = aware_utc(at)
        with self.crm.unit_of_work(actor) as uow:
            row = self._row(uow.session, name, lock=True)
            if row.state != "draft":
                raise Refused(f"{row.name} is {row.state}: only a draft can be scheduled")
            check_way_out(row.channel, row.subject, row.html, row.text,
                          self._sample_fields(), self.conf.sms_refusal)
            row.state, row.scheduled_at = "scheduled", when
        return self.get(name)

    def pause(self, name: str, actor: Actor | None = None) -> Send:
        return self._move(name, ("scheduled", "sending"), "paused", actor)

    def resume(self, name: str, actor: Actor | None = None) -> Send:
        require_role(actor, SENDERS, "resume sends")
        with self.crm.unit_of_work(actor) as uow:
            row = self._row(uow.session, name, lock=True)
            if row.state != "paused":
                raise Refused(f"{row.name} is {row.state}: only a paused send resumes")
            row.state = "sending" if row.started_at else "scheduled"
        return self.get(name)

    def cancel(self, name: str, actor: Actor | None = None) -> Send:
        sent = self._move(name, ("draft", "scheduled", "sending", "paused"), "cancelled", actor)
        with self.crm.unit_of_work(actor) as uow:
            uow.session.execute(
                update(RecipientRow)
                .where(RecipientRow.send_id == sent.id, RecipientRow.state == "pending")
                .values(state="skipped", reason="cancelled"))
        return sent

    def _move(self, name: str, sources: tuple[str, ...], target: str,
              actor: Actor | None) -> Send:
        require_role(actor, SENDERS, f"make sends {target}")
        with self.crm.unit_of_work(actor) as uow:
            row = self._row(uow.session, name, lock=True)
            if row.state not in sources:
                raise Refused(f"{row.name} is {row.state}: it cannot be {target}")
            row.state = target
            if target == "cancelled":
                row.finished_at = utcnow()
        return self.get(name)

    # -- figures ---------------------------------------------------------------------------
    def report(self, name: str) -> SendReport:
        """Audience, skipped (by reason), sent, failed, bounced, unsubscribed."""
        with self.crm.unit_of_work(readonly=True) as uow:
            return self.report_in(uow.session, self._row(uow.session, name))

    @classmethod
    def report_in(cls, session: Session, row: SendRow) -> SendReport:
        """:meth:`report` of a send's row, in a unit of work (also the registered
        report ``newsletter.sends``, one line per send)."""
        by = dict(session.execute(
            select(RecipientRow.state, func.count())
            .where(RecipientRow.send_id == row.id).group_by(RecipientRow.state)).all())
        skipped = dict(session.execute(
            select(RecipientRow.reason, func.count())
            .where(RecipientRow.send_id == row.id, RecipientRow.state == "skipped")
            .group_by(RecipientRow.reason)).all())
        bounced = session.scalar(select(func.count()).where(
            RecipientRow.send_id == row.id, RecipientRow.bounced.is_(True))) or 0
        unsubscribed = cls._unsubscribed(session, row)
        return SendReport(
            send=cls._model(session, row), audience=sum(by.values()),
            pending=by.get("pending", 0) + by.get("claimed", 0),
            sent=by.get("sent", 0), failed=by.get("failed", 0),
            skipped={str(k): int(v) for k, v in sorted(skipped.items())},
            bounced=bounced, unsubscribed=unsubscribed)

    @staticmethod
    def _unsubscribed(session: Session, row: SendRow) -> int:
        """Recipients sent a message who withdrew the send's consent since."""
        from sqlalchemy import ColumnElement

        from recrm_core import consent_withdrawn_clause

        customer: ColumnElement[int] = RecipientRow.customer_id  # type: ignore[assignment]
        found: int | None = session.scalar(select(func.count()).where(
            RecipientRow.send_id == row.id, RecipientRow.state == "sent",
            RecipientRow.customer_id.is_not(None),
            consent_withdrawn_clause(customer, row.channel, row.purpose)))
        return found or 0

    # -- content ---------------------------------------------------------------------------
    def _sample_fields(self) -> dict[str, Any]:
        blank = {name: Blank() for name in self._field_plugins()}
        return {**blank, "name": POLITE_NAME, "project": "", "customer_id": 0, "issue": 0}

    def _field_plugins(self) -> list[str]:
        """The plugins adding merge fields (``recrm_message_fields``)."""
        return [impl.plugin_name for impl in
                self.crm.pm.hook.recrm_message_fields.get_hookimpls()]

    def plugin_fields(self, customers: list[Customer]) -> dict[int, dict[str, Any]]:
        """Each customer's plugin merge fields, by plugin name (empty where a plugin
        has none for them: ``{{ membership.tier or "业主" }}`` falls back)."""
        if not customers or not self._field_plugins():
            return {}
        with self.crm.unit_of_work(readonly=True) as uow:
            found = self.crm.hooks.message_fields(uow, customers)
        names = self._field_plugins()
        return {c.id: {n: Blank(found.get(c.id, {}).get(n, {})) for n in names}
                for c in customers}

    def test_link(self) -> str:
        """The unsubscribe link of a test message: it withdraws nobody's consent."""
        return f"{self.crm.config.public_base_url}/u/{TEST_TOKEN}"

    def fields_for(self, customer: Customer, row: SendRow | Send,
                   extra: Mapping[str, Any] | None = None,
                   test: bool = False) -> dict[str, Any]:
        """The merge fields of one customer's message (``extra``: the plugins').
        ``test``: a test message, whose link is :meth:`test_link` (no token is signed)."""
        project = customer.projects[0].project if customer.projects else ""
        link = self.test_link() if test else unsubscribe_url(
            self.crm, customer.id, row.channel, row.purpose)
        return {
            **(extra or {}),
            "name": customer.name or POLITE_NAME, "project": project,
            "customer_id": customer.id, "issue": row.issue_number or 0,
            "unsubscribe_url": link,
        }

    def message_for(self, customer: Customer, row: SendRow | Send, to: str,
                    message_id: str | None, subject: str | None, html: str | None,
                    text: str | None, extra: Mapping[str, Any] | None = None,
                    test: bool = False) -> Message:
        """One customer's message: rendered, with its way out and its stable id
        (``test``: a test message, for nobody, with a link that withdraws nothing)."""
        conf = self.conf
        fields = self.fields_for(customer, row, extra, test)
        owner = None if test else customer.id
        headers: dict[str, str] = {}
        if row.channel == "email":
            link = fields["unsubscribe_url"]
            headers["List-Unsubscribe"] = f"<{link}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            if message_id:
                headers["Message-ID"] = message_id
            body_html = render(html, fields, html=True) if html else None
            body = render(text, fields) if text else _text_of(body_html or "", link)
            return Message(channel="email", to=to, subject=render(subject or "", fields),
                           body=body, html=body_html, customer_id=owner,
                           headers=headers)
        if message_id:
            headers["Idempotency-Key"] = message_id
        return Message(channel="sms", to=to, body=sms_text(render(text or "", fields),
                                                           conf.sms_signature),
                       customer_id=owner, headers=headers)

    def preview(self, name: str, customer_id: int, actor: Actor | None = None) -> Message:
        """The message one customer would get (nothing is sent or recorded)."""
        require_role(actor, SENDERS, "preview messages")
        with self.crm.unit_of_work(readonly=True) as uow:
            row = self._row(uow.session, name)
            uow.session.expunge(row)
        customer = self.crm.customers.get(customer_id)
        to = recipient_address(customer, row.channel) or "(no address)"
        extra = self.plugin_fields([customer]).get(customer.id)
        return self.message_for(customer, row, to, None, row.subject, row.html, row.text,
                                extra)

    def test_send(self, name: str, address: str, customer_id: int | None = None,
                  actor: Actor | None = None) -> DeliveryResult:
        """Send the message to one address (merge fields of ``customer_id``, or the
        polite fallbacks); recorded nowhere. Its unsubscribe link (body and
        ``List-Unsubscribe``) is :meth:`test_link`: no token is signed for anyone, so
        whoever clicks it withdraws nobody's consent."""
        require_role(actor, SENDERS, "send test messages")
        with self.crm.unit_of_work(readonly=True) as uow:
            row = self._row(uow.session, name)
            uow.session.expunge(row)
        to = normalise_address(self.crm, row.channel, address)
        if customer_id is not None:
            customer = self.crm.customers.get(customer_id)
        else:
            now = utcnow()
            # a stand-in for the merge fields only: no token is signed (test=True)
            customer = Customer(id=1, created_at=now, updated_at=now)
        extra = self.plugin_fields([customer]).get(customer.id) if customer_id else None
        message = self.message_for(customer, row, to, None, row.subject, row.html, row.text,
                                   extra or {k: Blank() for k in self._field_plugins()},
                                   test=True)
        if row.channel == "email":
            message = message.model_copy(update={"subject": f"[测试] {message.subject}"})
        return self.crm.send_message(message)

    # -- suppressions ----------------------------------------------------------------------
    def suppress(self, channel: str, address: str, reason: str = "manual",
                 at: dt.datetime | None = None, actor: Actor | None = None) -> bool:
        """Suppress ``address`` on ``channel``; False when it already was."""
        require_role(actor, SENDERS, "suppress addresses")
        if reason not in ("manual", "hard_bounce", "complaint", "soft_bounces"):
            raise InvalidInput("reason", f"reason {reason!r} is not one of manual, "
                               "hard_bounce, complaint, soft_bounces")
        digest = address_hash(self.crm, _channel(channel), address)
        with self.crm.unit_of_work(actor) as uow:
            return bool(insert_or_ignore(uow.session, SuppressionRow, {
                "channel": channel, "address_hash": digest, "reason": reason,
                "at": aware_utc(at)}, on=[SuppressionRow.channel, SuppressionRow.address_hash]))

    def suppressions(self, channel: str | None = None) -> list[Suppression]:
        with self.crm.unit_of_work(readonly=True) as uow:
            query = select(SuppressionRow).order_by(SuppressionRow.id)
            if channel is not None:
                query = query.where(SuppressionRow.channel == _channel(channel))
            return [Suppression(channel=r.channel, address_hash=r.address_hash,
                                reason=r.reason, at=r.at) for r in uow.session.scalars(query)]

    def is_suppressed(self, channel: str, address: str) -> bool:
        digest = address_hash(self.crm, _channel(channel), address)
        with self.crm.unit_of_work(readonly=True) as uow:
            return uow.session.scalar(select(SuppressionRow.id).where(
                SuppressionRow.channel == channel,
                SuppressionRow.address_hash == digest)) is not None

    def archive(self, code: str) -> list[SendReport]:
        """Every issue of publication ``code``, oldest first, with who got it."""
        return [self.report(s.name) for s in self.sends(publication=code)]


class _ListColumns(Vocabulary):
    """The customer import's columns, where an unknown column (备注) is ignored (fed to
    a field nothing reads) and remembered in ``ignored``, not a refusal of the file."""

    IGNORED = "_ignored"

    def __init__(self) -> None:
        super().__init__({})
        self.aliases = dict(CUSTOMER_COLUMNS.aliases)
        self.known = CUSTOMER_COLUMNS.known
        self.lists = {**CUSTOMER_COLUMNS.lists, self.IGNORED: self.IGNORED}
        self.text_only = CUSTOMER_COLUMNS.text_only
        self.ignored: list[str] = []

    def field_of(self, cell: str) -> str | None:
        found = super().field_of(cell)
        if found is not None:
            return found
        label = cell.strip()
        if label and label not in self.ignored:
            self.ignored.append(label)
        return self.IGNORED


class Blank(dict[str, Any]):
    """A plugin's merge fields: a field it has not given renders empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _text_of(html: str, link: str) -> str:
    """A plain-text alternative for an HTML-only email: its text, and the link."""
    import re
    from html import unescape

    text = unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>|</p>", "\n", html)))
    text = "\n".join(line.strip() for line in text.splitlines() if line.strip())
    return text if link in text else f"{text}\n\n退订: {link}"


def service(crm: CRM) -> Newsletter:
    return Newsletter(crm)


__all__ = ["Newsletter", "address_hash", "service"]
