"""Campaigns and the magazine's issues: their definitions, the state machine (draft →
scheduled → sending → sent, or paused, cancelled) and their figures."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from recrm_core import (
    Actor,
    InvalidInput,
    NotFound,
    Refused,
    insert_or_ignore,
    require_role,
    utcnow,
)

from ..content import check_way_out
from ..models import Send, SendReport
from ..tables import ListRow, PublicationRow, RecipientRow, SendRow
from .fields import _Fields
from .lists import _Lists
from .rules import PURPOSE, SENDERS, _channel, _code_name, _name, aware_utc
from .segments import _Segments


class _Sends(_Segments, _Lists, _Fields):
    """Campaigns and issues (a send names a saved segment or a list, and is checked
    against the merge fields the plugins give)."""

    def create_campaign(
        self, name: str, *, channel: str, segment: str | None = None,
        list_name: str | None = None, purpose: str = "marketing", subject: str | None = None,
        html: str | None = None, text: str | None = None, actor: Actor | None = None,
    ) -> Send:
        """A draft campaign to a saved segment or a static list."""
        require_role(actor, SENDERS, "create campaigns")
        return self._create(_code_name(name, "campaign name", 100), "campaign", None, None,
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

    @staticmethod
    def _stored_name(session: Session, name: str) -> str:
        """The name send ``name`` is stored under: ``name`` itself when a send has it
        (one made before names were cleaned as codes keeps its spelling), else ``name``
        cleaned as a code (``ｓｐｒｉｎｇ`` finds ``spring``)."""
        if session.scalar(select(SendRow.id).where(SendRow.name == name)) is not None:
            return name
        try:
            return _code_name(name, "campaign name", 100)
        except InvalidInput:
            return name  # found by no name: NotFound names it as given

    def _row(self, session: Session, name: str, lock: bool = False) -> SendRow:
        query = select(SendRow).where(SendRow.name == self._stored_name(session, name))
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
        when = aware_utc(at, "at")
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
    def archive(self, code: str) -> list[SendReport]:
        """Every issue of publication ``code``, oldest first, with who got it."""
        return [self.report(s.name) for s in self.sends(publication=code)]
