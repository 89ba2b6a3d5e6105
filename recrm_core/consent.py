"""Consent records: per customer, channel and purpose; the newest record decides."""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from sqlalchemy import ColumnElement, and_, exists, literal, select
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from .access import NO_FREE_TEXT, check_writer, require_role
from .customers import resolve_id
from .db import utcnow
from .errors import InvalidInput
from .identity import clean
from .models import Actor, Channel, Consent, Purpose
from .tables import ConsentRow
from .values import optional_code

if TYPE_CHECKING:
    from .crm import CRM

CHANNELS: tuple[str, ...] = get_args(Channel)
PURPOSES: tuple[str, ...] = get_args(Purpose)


def _check(channel: str, purpose: str) -> None:
    if channel not in CHANNELS:
        raise InvalidInput("channel", f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    if purpose not in PURPOSES:
        raise InvalidInput("purpose", f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}")


def consent_state_clause(
    customer_id: ColumnElement[int] | QueryableAttribute[int],
    channel: str,
    purpose: str,
    granted: bool,
) -> ColumnElement[bool]:
    """SQL: the newest record for (customer, channel, purpose) exists and its
    ``granted`` equals ``granted``. Neither clause holds for a customer without any
    record, so callers can tell "withdrew" from "never asked"."""
    _check(channel, purpose)
    newer = aliased(ConsentRow)
    latest = aliased(ConsentRow)
    no_newer = ~exists().where(
        newer.customer_id == latest.customer_id,
        newer.channel == latest.channel,
        newer.purpose == latest.purpose,
        (newer.recorded_at > latest.recorded_at)
        | and_(newer.recorded_at == latest.recorded_at, newer.id > latest.id),
    )
    return exists().where(
        latest.customer_id == customer_id,
        latest.channel == channel,
        latest.purpose == purpose,
        latest.granted.is_(granted),
        no_newer,
    )


def consent_granted_clause(
    customer_id: ColumnElement[int] | QueryableAttribute[int], channel: str, purpose: str
) -> ColumnElement[bool]:
    """SQL: the newest record for (customer, channel, purpose) exists and grants.

    For segments and campaigns: only opted-in customers, decided in the database.
    """
    return consent_state_clause(customer_id, channel, purpose, True)


def consent_withdrawn_clause(
    customer_id: ColumnElement[int] | QueryableAttribute[int], channel: str, purpose: str
) -> ColumnElement[bool]:
    """SQL: the newest record for (customer, channel, purpose) is a withdrawal."""
    return consent_state_clause(customer_id, channel, purpose, False)


class ConsentService:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def record(
        self,
        customer_id: int,
        channel: str,
        purpose: str,
        granted: bool,
        source: str | None = None,
        actor: Actor | None = None,
    ) -> Consent:
        check_writer(actor)
        channel, purpose = clean(channel).lower(), clean(purpose).lower()
        _check(channel, purpose)
        try:
            source = optional_code(source, 64)
        except ValueError as exc:
            raise InvalidInput("source", f"source {exc}") from None
        with self.crm.unit_of_work(actor) as uow:
            cid = resolve_id(uow.session, customer_id)
            row = ConsentRow(
                customer_id=cid,
                channel=channel,
                purpose=purpose,
                granted=granted,
                source=source,
                actor_staff=actor.staff_id if actor else None,
                recorded_at=utcnow(),
            )
            uow.session.add(row)
            uow.session.flush()
            # Not the source: it is free text, and may name the person.
            self.crm.audit.record(uow, "consent", customer_id=cid, details={
                "channel": channel, "purpose": purpose, "granted": granted})
            return _to_model(row)

    def grant(self, customer_id: int, channel: str, purpose: str = "marketing",
              source: str | None = None, actor: Actor | None = None) -> Consent:
        return self.record(customer_id, channel, purpose, True, source, actor)

    def withdraw(self, customer_id: int, channel: str, purpose: str = "marketing",
                 source: str | None = None, actor: Actor | None = None) -> Consent:
        return self.record(customer_id, channel, purpose, False, source, actor)

    def current(self, customer_id: int, actor: Actor | None = None) -> list[Consent]:
        """The deciding (newest) record for each channel and purpose."""
        require_role(actor, ("admin", "manager", "sales", "service", "analyst"),
                     "see consent records")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            records = self.current_in(uow.session, resolve_id(uow.session, customer_id))
        if actor is None or actor.role not in NO_FREE_TEXT:
            return records
        return [r.model_copy(update={"source": self.crm.access.free_text(actor, r.source)})
                for r in records]

    def current_in(self, session: Session, customer_id: int) -> list[Consent]:
        rows = session.scalars(
            select(ConsentRow)
            .where(ConsentRow.customer_id == customer_id)
            .order_by(ConsentRow.recorded_at, ConsentRow.id)
        ).all()
        newest: dict[tuple[str, str], ConsentRow] = {}
        for row in rows:
            newest[(row.channel, row.purpose)] = row
        return [_to_model(r) for _, r in sorted(newest.items())]

    def allowed(self, customer_id: int, channel: str, purpose: str = "marketing") -> bool:
        _check(channel, purpose)
        with self.crm.unit_of_work(readonly=True) as uow:
            cid = resolve_id(uow.session, customer_id)
            clause = consent_granted_clause(literal(cid), channel, purpose)
            return bool(uow.session.scalar(select(clause)))


def _to_model(row: ConsentRow) -> Consent:
    return Consent(
        customer_id=row.customer_id,
        channel=row.channel,
        purpose=row.purpose,
        granted=row.granted,
        source=row.source,
        recorded_at=row.recorded_at,
    )
