"""Consent records: per customer, channel and purpose; the newest record decides.

The purposes are a registry: the core's ``marketing`` and ``surveys``, and those the
enabled plugins register through ``recrm_consent_purposes`` (``crm.consent.purposes()``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, cast, get_args

from sqlalchemy import ColumnElement, Table, and_, exists, insert, literal, select
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from .access import NO_FREE_TEXT, check_writer, require_role
from .customers import resolve_for_write, resolve_id, resolve_ids_for_write
from .db import UnitOfWork, utcnow
from .errors import ConfigError, InvalidInput
from .identity import clean
from .models import Actor, Channel, Consent, CorePurpose
from .tables import ConsentRow
from .values import optional_code

if TYPE_CHECKING:
    from .crm import CRM

CHANNELS: tuple[str, ...] = get_args(Channel)
#: the core's purposes (a CRM's plugins may add more: ``crm.consent.purposes()``)
PURPOSES: tuple[str, ...] = get_args(CorePurpose)
#: what each core purpose means, as the unsubscribe page names it
CORE_PURPOSES: dict[str, str] = {"marketing": "营销信息", "surveys": "调查问卷"}
#: one consent record to write: customer id, channel, purpose, granted, source
ConsentRecord = tuple[int, str, str, bool, str | None]
_INSERT = insert(cast(Table, ConsentRow.__table__))
_PURPOSE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _check(channel: str, purpose: str, purposes: Collection[str] | None = None) -> None:
    """``channel`` is known and ``purpose`` is one of ``purposes`` (without them: a
    well-formed purpose name, for SQL built where no CRM is at hand)."""
    if channel not in CHANNELS:
        raise InvalidInput("channel", f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    known = purpose in purposes if purposes is not None else (
        isinstance(purpose, str) and _PURPOSE_NAME.fullmatch(purpose) is not None)
    if not known:
        listed = ", ".join(purposes if purposes is not None else PURPOSES)
        raise InvalidInput("purpose", f"purpose {purpose!r} is not one of {listed}")


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
    return exists().where(
        _LATEST.customer_id == customer_id,
        _LATEST.channel == channel,
        _LATEST.purpose == purpose,
        _LATEST.granted.is_(granted),
        _NO_NEWER,
    )


# Built once: ``aliased()`` makes a proxy per column, which cost more than running the
# query when the clause was built per call (44,600 proxies in one demo). One pair of
# aliases serves every clause: each EXISTS is its own scope, so two consent conditions
# in one statement do not see each other's aliases.
_NEWER = aliased(ConsentRow, name="consent_newer")
_LATEST = aliased(ConsentRow, name="consent_latest")
_NO_NEWER = ~exists().where(
    _NEWER.customer_id == _LATEST.customer_id,
    _NEWER.channel == _LATEST.channel,
    _NEWER.purpose == _LATEST.purpose,
    (_NEWER.recorded_at > _LATEST.recorded_at)
    | and_(_NEWER.recorded_at == _LATEST.recorded_at, _NEWER.id > _LATEST.id),
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
        self._purposes: dict[str, str] | None = None
        self._plugins_key: tuple[str, ...] = ()

    def purposes(self) -> dict[str, str]:
        """Every consent purpose, name → what it means (the unsubscribe page shows it):
        the core's, then those the enabled plugins register."""
        # Rebuilt when the set of plugins changes (a test's register_plugin).
        key = tuple(sorted(name for name, _ in self.crm.pm.list_name_plugin()))
        if self._purposes is None or key != self._plugins_key:
            found = dict(CORE_PURPOSES)
            registered: list[tuple[str, str, str]] = []
            self.crm.hooks.consent_purposes(
                lambda plugin, name, label: registered.append((plugin, name, label)))
            for plugin, name, label in registered:
                if not isinstance(name, str) or not _PURPOSE_NAME.fullmatch(name):
                    raise ConfigError(f"plugin {plugin!r} registered the consent purpose "
                                      f"{name!r}: not a lower-case name of up to 32 characters")
                if name in found:
                    raise ConfigError(f"plugin {plugin!r} registered the consent purpose "
                                      f"{name!r}, which is already registered")
                found[name] = str(label)
            self._purposes, self._plugins_key = found, key
        return self._purposes

    def check(self, channel: str, purpose: str) -> None:
        """:class:`InvalidInput` unless ``channel`` and ``purpose`` are known here."""
        _check(channel, purpose, self.purposes())

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
        with self.crm.unit_of_work(actor) as uow:
            return self.record_in(uow, customer_id, channel, purpose, granted, source)

    def record_in(
        self,
        uow: UnitOfWork,
        customer_id: int,
        channel: str,
        purpose: str,
        granted: bool,
        source: str | None = None,
    ) -> Consent:
        """``record`` inside an existing unit of work (its actor acts), for plugins and
        bulk loads that record many consents in one transaction."""
        return self.record_many_in(uow, [(customer_id, channel, purpose, granted, source)])[0]

    def record_many_in(
        self, uow: UnitOfWork, records: Iterable[ConsentRecord]
    ) -> list[Consent]:
        """``record_in`` for many records, each ``(customer_id, channel, purpose,
        granted, source)``, in order: every record checked first (nothing is written
        when one is refused), the customers resolved and the rows and their audit
        entries written a batch at a time. A bulk load of consent records."""
        checked = [self._checked(record) for record in records]
        if not checked:
            return []
        # (uow.connection: pending ORM changes flushed first, no Session made for this)
        conn = uow.connection
        if len(checked) == 1:
            ids = {checked[0][0]: resolve_for_write(conn, checked[0][0])}
        else:
            ids = resolve_ids_for_write(conn, [record[0] for record in checked])
        actor_staff = uow.actor.staff_id if uow.actor else None
        recorded_at = utcnow()
        consents = [Consent(customer_id=ids[customer_id], channel=channel, purpose=purpose,
                            granted=granted, source=source, recorded_at=recorded_at)
                    for customer_id, channel, purpose, granted, source in checked]
        rows = [c.model_dump() | {"actor_staff": actor_staff} for c in consents]
        # A Core insert: an ORM object and its flush cost several times more (a bulk
        # load of consents records thousands), and nothing needs the row afterwards.
        conn.execute(_INSERT, rows[0] if len(rows) == 1 else rows)
        # Not the source: it is free text, and may name the person.
        self.crm.audit.record_many(uow, "consent", [
            (c.customer_id, {"channel": c.channel, "purpose": c.purpose, "granted": c.granted})
            for c in consents])
        return consents

    def _checked(self, record: ConsentRecord) -> ConsentRecord:
        """One record's values as stored; InvalidInput for an unknown channel or purpose
        or a bad source."""
        customer_id, channel, purpose, granted, source = record
        channel, purpose = clean(channel).lower(), clean(purpose).lower()
        self.check(channel, purpose)
        try:
            source = optional_code(source, 64)
        except ValueError as exc:
            raise InvalidInput("source", f"source {exc}") from None
        return customer_id, channel, purpose, granted, source

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
        self.check(channel, purpose)
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
