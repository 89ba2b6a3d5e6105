"""Adding and updating customers: identity resolution, the new customer's rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from sqlalchemy.orm import Session

from .. import identity
from ..access import check_writer
from ..db import UnitOfWork, utcnow
from ..errors import IdentityConflict, InvalidInput
from ..idcards import encrypt, keys_for_storing
from ..models import (
    Actor,
    AddResult,
    Customer,
    CustomerIn,
    CustomerUpdate,
    OwnerChange,
    ProjectLink,
    first_error,
    trusted,
)
from ..projects import project_code, project_id_in
from ..resolution import (
    EXTERNAL,
    ID_CARD,
    KEY_LABELS,
    MOBILE,
    WECHAT,
    Key,
    conflict_field,
    fill_changes,
    match_record,
    record_keys,
)
from ..tables import (
    CustomerRow,
    IdentityRow,
)
from .changes import (
    _INSERT_CUSTOMER,
    _INSERT_IDENTITY,
    _INSERT_LINK,
    _PROJECT_NAME,
    _identity_changes,
    _owner_change,
    _Service,
    email_twins,
    link_project,
    validate_record,
)
from .loading import (
    _ROW_FIELDS,
    _model_of,
    id_cards_of,
    load_customer,
    load_customers,
    owners_of_keys,
    resolve_for_write,
)

if TYPE_CHECKING:
    pass


class _Adding(_Service):
    """``add`` and ``update``."""

    def add(
        self, data: CustomerIn | Mapping[str, Any], actor: Actor | None = None
    ) -> AddResult:
        """Add one record with identity resolution: create, or merge into the one
        customer its mobile/ID card/WeChat unionid match. Raises InvalidInput or
        IdentityConflict."""
        check_writer(actor)
        record = validate_record(data, self.crm.config.default_region)
        if record.id_card:
            # Loaded before the transaction: their first use records the key file's
            # fingerprint in a transaction of its own, which on SQLite would wait for ours.
            keys_for_storing(self.crm)
        return self._retrying(actor, lambda uow: self._add(uow, record))

    def _add(self, uow: UnitOfWork, record: CustomerIn) -> AddResult:
        uow.check_staff([record.owner_staff], assigned=True)
        keys = record_keys(record, self._id_card_key)
        owners = owners_of_keys(uow.driver, keys)
        match = match_record(
            record, owners.get, lambda cid: id_cards_of(uow.driver, [cid]).get(cid), keys
        )
        if match.conflict:
            raise IdentityConflict(match.conflict, sorted(set(owners.values())),
                                   conflict_field(record))
        now = utcnow()
        if match.customer_id is None:
            customer, owner_change = self._create(uow, record, keys, now)
            twins = email_twins(uow.driver, customer.id, record.email)
            self.crm.hooks.customer_created(uow, customer)
            self.crm.hooks.owners_changed(uow, [owner_change] if owner_change else [])
            return AddResult(customer=customer, created=True, changed=True,
                             suspected_duplicate_of=twins)

        session = uow.session
        # The holder found by key, locked against a merge (a merge that moved the key
        # meanwhile is followed to its survivor): what follows writes for them.
        cid = resolve_for_write(session, match.customer_id)
        row = session.get_one(CustomerRow, cid)
        before = load_customers(session, [cid])[cid]
        current = {name: getattr(row, name) for name in ("name", "gender", "birth_date",
                                                         "persona", "budget", "email",
                                                         "external_id")}
        changes: dict[str, Any] = dict(fill_changes(current, record))
        for name, (_, new) in changes.items():
            setattr(row, name, new)
        new_keys = [k for k in keys if k[0] != EXTERNAL and k not in owners]
        self._add_identities(session, cid, new_keys, now, record.id_card)
        changes.update(_identity_changes(before, new_keys, record.id_card))
        linked = False
        owner_change = None
        if record.project:
            linked, owner_change = link_project(
                uow, cid, project_code(record.project), record.source,
                record.owner_staff, now,
            )
            if linked:
                changes["projects"] = (
                    [p.project for p in before.projects],
                    sorted({*(p.project for p in before.projects), record.project}),
                )
        if changes:
            row.updated_at = now
            session.flush()
            customer = load_customer(session, cid)
            self.crm.hooks.customer_updated(uow, customer, changes)
        else:
            customer = before
        self.crm.hooks.owners_changed(uow, [owner_change] if owner_change else [])
        return AddResult(customer=customer, created=False, changed=bool(changes))

    def _create(
        self, uow: UnitOfWork, record: CustomerIn, keys: Sequence[Key], now: dt.datetime
    ) -> tuple[Customer, OwnerChange | None]:
        """Write a new customer, its identities and its first project link with Core
        inserts on prebuilt statements, and build the returned model from the values
        written: reading back what was just written cost three queries, and the ORM
        objects three flushes (most of ``add``'s time)."""
        conn = uow.driver
        row = {
            "name": record.name, "gender": record.gender, "birth_date": record.birth_date,
            "persona": record.persona, "budget": record.budget, "email": record.email,
            "stage": "prospect",
            "source_system": (record.source_system or "default") if record.external_id
            else None,
            "external_id": record.external_id, "merged_into": None,
            "created_at": now, "updated_at": now, "erased_at": None,
        }
        cid = int(_INSERT_CUSTOMER.run(conn, row))
        row["id"] = cid
        identities = [k for k in keys if k[0] != EXTERNAL]
        if identities:
            for kind, value in identities:
                _INSERT_IDENTITY.run(conn, {
                    "customer_id": cid, "kind": kind, "value": value, "created_at": now,
                    "display": encrypt(self.crm.keys, cast(str, record.id_card))
                    if kind == ID_CARD else value})
        links: list[ProjectLink] = []
        owner_change = None
        if record.project:
            code = project_code(record.project)
            pid = project_id_in(uow, code)
            _INSERT_LINK.run(conn, {
                "customer_id": cid, "project_id": pid, "stage": "prospect",
                "owner_staff": record.owner_staff, "source": record.source,
                "first_seen_at": now, "stage_changed_at": now})
            links.append(trusted(ProjectLink, {
                "project": code, "project_name": _PROJECT_NAME.all(conn, {"id": pid})[0][0],
                "stage": "prospect", "owner_staff": record.owner_staff,
                "source": record.source, "first_seen_at": now}))
            owner_change = _owner_change(cid, code, None, record.owner_staff, "first_link")
        customer = _model_of(
            [row[name] for name in _ROW_FIELDS],
            [value for kind, value in identities if kind == MOBILE],
            record.id_card if any(kind == ID_CARD for kind, _ in identities) else None,
            [value for kind, value in identities if kind == WECHAT],
            links,
        )
        return customer, owner_change

    def _add_identities(
        self, session: Session, cid: int, keys: Iterable[Key], now: dt.datetime,
        id_card: str | None,
    ) -> None:
        """``id_card``: the record's ID number in clear, encrypted for ``display`` (its
        key's value is the hash)."""
        for kind, value in keys:
            display = encrypt(self.crm.keys, cast(str, id_card)) if kind == ID_CARD else value
            session.add(IdentityRow(customer_id=cid, kind=kind, value=value, display=display,
                                    created_at=now))
        session.flush()

    def update(
        self, customer_id: int, data: CustomerUpdate | Mapping[str, Any],
        actor: Actor | None = None,
    ) -> Customer:
        """Overwrite the given profile fields; add mobiles and WeChat unionids (one
        another customer holds is a conflict). Fires the update hook only when
        something changed."""
        check_writer(actor)
        if not isinstance(data, CustomerUpdate):
            try:
                data = CustomerUpdate.model_validate(
                    dict(data), context={"region": self.crm.config.default_region}
                )
            except ValidationError as exc:
                raise InvalidInput(*first_error(exc)) from None
        # Retried from scratch when a concurrent writer took a key it adds between our
        # read and our write (the UNIQUE constraint refuses it): the retry's read sees
        # that writer's key and answers the conflict, as a later update would.
        return self._retrying(actor, lambda uow: self._update(uow, customer_id, data))

    def _update(self, uow: UnitOfWork, customer_id: int, data: CustomerUpdate) -> Customer:
        session = uow.session
        cid = resolve_for_write(session, customer_id)
        row = session.get_one(CustomerRow, cid)
        before = load_customers(session, [cid])[cid]
        changes: dict[str, Any] = {}
        for name in data.model_fields_set - {"add_mobiles", "add_wechat_unionids"}:
            new = getattr(data, name)
            if new is not None and getattr(row, name) != new:
                changes[name] = (getattr(row, name), new)
                setattr(row, name, new)
        if before.id_card and changes.keys() & {"gender", "birth_date"}:
            # The same rule as for a new record: the ID card is the authority.
            card = identity.parse_id_card(before.id_card)
            for name in ("gender", "birth_date"):
                if name in changes and changes[name][1] != getattr(card, name):
                    raise InvalidInput(
                        name,
                        f"{name} {changes[name][1]} contradicts the ID card "
                        f"({getattr(card, name)})",
                    )
        added = [(MOBILE, m) for m in data.add_mobiles] + [
            (WECHAT, u) for u in data.add_wechat_unionids]
        if added:
            owners = owners_of_keys(session, added)
            taken = [(key, other) for key, other in owners.items() if other != cid]
            if taken:
                (kind, value), other = min(taken, key=lambda t: added.index(t[0]))
                # A mobile is shown (staff know it); a unionid is opaque, so not.
                shown = f"mobile {value}" if kind == MOBILE else KEY_LABELS[kind]
                raise IdentityConflict(
                    f"{shown} belongs to customer {other}", [cid, other],
                    "add_mobiles" if kind == MOBILE else "add_wechat_unionids")
            fresh = [key for key in added if key not in owners]
            self._add_identities(session, cid, fresh, utcnow(), None)
            changes.update(_identity_changes(before, fresh, None))
        if not changes:
            return before
        row.updated_at = utcnow()
        session.flush()
        customer = load_customer(session, cid)
        self.crm.hooks.customer_updated(uow, customer, changes)
        return customer
