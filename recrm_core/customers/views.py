"""Reading customers through the service: get, find, count, duplicates, the 360 view."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import (
    func,
    select,
)

from .. import identity
from ..db import UnitOfWork, read_engine
from ..errors import Forbidden, InvalidInput
from ..idcards import decrypt, decrypt_on
from ..models import (
    Actor,
    Customer,
    CustomerView,
    DuplicatePair,
    IdentityEntry,
)
from ..resolution import (
    ID_CARD,
    MOBILE,
    WECHAT,
)
from ..tables import (
    CustomerRow,
    IdentityRow,
)
from ..values import required_text
from .changes import (
    _Service,
    interaction_entry,
)
from .loading import (
    _RAW_BY_KEY,
    _holder_of,
    _moved,
    _moved_holder,
    customer_by_key,
    load_customer,
    load_customers,
    resolve_for_write,
    resolve_id,
    resolve_ids_for_write,
)

if TYPE_CHECKING:
    pass


class _Views(_Service):
    """The reads."""

    def get(self, customer_id: int, actor: Actor | None = None) -> Customer:
        """The customer (the survivor, if ``customer_id`` was merged away)."""
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            customer = load_customer(uow.session, customer_id)
            return self.crm.access.present(actor, [customer], uow.session)[0]

    def get_in(self, uow: UnitOfWork, customer_id: int) -> Customer:
        """``get`` inside an existing unit of work (for hooks and plugin services)."""
        return load_customer(uow.connection, customer_id)

    def resolve_in(self, uow: UnitOfWork, customer_id: int) -> int:
        """The surviving customer's id inside a unit of work; NotFound if none."""
        return resolve_id(uow.connection, customer_id)

    def resolve_for_write_in(self, uow: UnitOfWork, customer_id: int) -> int:
        """:meth:`resolve_in` for a write about to land on the customer: the survivor,
        locked against a merge until ``uow`` ends (a write racing a merge lands on the
        survivor, never on the merged-away record). Not in a read-only unit of work."""
        return resolve_for_write(uow.connection, customer_id)

    def get_many_in(self, uow: UnitOfWork, customer_ids: Iterable[int]) -> dict[int, Customer]:
        """The customers ``customer_ids`` name, by id, inside a unit of work, read in a
        few statements whatever their number (for a plugin's batch paths); an id that
        names no customer of its own (merged away, erased, unknown) is left out."""
        return load_customers(uow.connection, customer_ids)

    def resolve_many_for_write_in(self, uow: UnitOfWork,
                                  customer_ids: Iterable[int]) -> dict[int, int]:
        """:meth:`resolve_for_write_in` for many ids, each given id -> its survivor,
        locked against a merge until ``uow`` ends, with one read per few hundred ids;
        the error is the first failing id's, in order."""
        return resolve_ids_for_write(uow.connection, customer_ids)

    def get_many(
        self, customer_ids: Iterable[int], actor: Actor | None = None
    ) -> list[Customer]:
        customer_ids = list(customer_ids)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            found = load_customers(uow.session, customer_ids)
            return self.crm.access.present(
                actor, [found[i] for i in customer_ids if i in found], uow.session)

    def find(
        self, *, mobile: str | None = None, id_card: str | None = None,
        email: str | None = None, wechat_unionid: str | None = None,
        actor: Actor | None = None,
    ) -> list[Customer]:
        """Customers matching a mobile, ID card, WeChat unionid or email (normalised
        first)."""
        given = [v for v in (mobile, id_card, email, wechat_unionid) if v is not None]
        if len(given) != 1:
            raise InvalidInput("", "give exactly one of mobile, id_card, email, wechat_unionid")
        if actor is not None and actor.role == "partner" and mobile is None:
            # Finding by a key they never see would tell them whose it is.
            raise Forbidden("role partner may find customers by mobile only")
        try:
            if mobile is not None:
                key = (MOBILE, identity.normalise_mobile(mobile, self.crm.config.default_region))
            elif id_card is not None:
                key = (ID_CARD, self._id_card_key(identity.normalise_id_card(id_card)))
            elif wechat_unionid is not None:
                key = (WECHAT, identity.normalise_wechat_unionid(wechat_unionid))
            else:
                mail = identity.normalise_email(email)
                with self.crm.unit_of_work(actor, readonly=True) as uow:
                    session = uow.session
                    ids = session.scalars(
                        select(CustomerRow.id)
                        .where(CustomerRow.email == mail, CustomerRow.merged_into.is_(None))
                        .order_by(CustomerRow.id)
                    ).all()
                    found = load_customers(session, ids)
                    return self.crm.access.present(actor, [found[i] for i in ids], session)
        except identity.IdentityError as exc:
            raise InvalidInput(exc.field, exc.reason) from None
        if actor is not None:
            with self.crm.unit_of_work(actor, readonly=True) as uow:
                customer = customer_by_key(uow.session, key)
                return self.crm.access.present(
                    actor, [] if customer is None else [customer], uow.session)
        # No hook fires and nothing is written, so a pool connection does instead of a
        # unit of work: the SDK's own look-up (no actor) sees everything. No BEGIN
        # either: the customer comes in one statement, which is atomic on its own.
        engine = read_engine(self.crm)
        rows = _RAW_BY_KEY.pooled(engine, {"kind": key[0], "value": key[1]})
        if rows and _moved(rows[0]):
            with engine.connect() as conn:
                customer = _moved_holder(conn, rows[0][0])
        else:
            customer = _holder_of(rows, lambda text: decrypt(self.crm.keys, text))
        return [] if customer is None else [customer]

    def count(self, actor: Actor | None = None) -> int:
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            return uow.session.scalar(
                select(func.count()).select_from(CustomerRow)
                .where(CustomerRow.merged_into.is_(None), CustomerRow.erased_at.is_(None))
            ) or 0

    def duplicates(
        self, limit: int | None = None, actor: Actor | None = None
    ) -> list[DuplicatePair]:
        """Groups of active customers sharing an email: suspected duplicates to review
        (the emails masked but for admins; partners, who never see an email, may not)."""
        if actor is not None and actor.role == "partner":
            raise Forbidden("role partner may not review duplicates (they are found by email)")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            shared = (
                select(CustomerRow.email)
                .where(CustomerRow.email.is_not(None), CustomerRow.merged_into.is_(None))
                .group_by(CustomerRow.email)
                .having(func.count() > 1)
                .order_by(CustomerRow.email)
            )
            if limit is not None:
                shared = shared.limit(limit)
            emails = session.scalars(shared).all()
            pairs: list[DuplicatePair] = []
            for mail in emails:
                ids = session.scalars(
                    select(CustomerRow.id)
                    .where(CustomerRow.email == mail, CustomerRow.merged_into.is_(None))
                    .order_by(CustomerRow.id)
                ).all()
                shown = mail if actor is None or actor.role == "admin" \
                    else identity.mask_email(mail or "")
                pairs.append(DuplicatePair(email=shown, customer_ids=list(ids)))
            return pairs

    def view(self, customer_id: int, actor: Actor | None = None) -> CustomerView:
        """The 360 view: profile, projects, timeline (core and plugins), cases, consents."""
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            customer = load_customer(session, customer_id)
            interactions = self.crm.interactions.list_in(session, customer.id)
            timeline = [interaction_entry(i) for i in interactions]
            timeline.extend(self.crm.hooks.timeline(uow, customer))
            timeline.sort(key=lambda e: e.at, reverse=True)
            cases = self.crm.cases.list_for_customer(session, customer.id)
            consents = self.crm.consent.current_in(session, customer.id)
            conn = session.connection()
            identities = [
                IdentityEntry(kind=kind, since=since,
                              value=decrypt_on(conn, display) if kind == ID_CARD else display)
                for kind, display, since in session.execute(
                    select(IdentityRow.kind, IdentityRow.display, IdentityRow.created_at)
                    .where(IdentityRow.customer_id == customer.id)
                    .order_by(IdentityRow.id)
                )
            ]
            birthplace = identity.id_card_birthplace(customer.id_card) if customer.id_card \
                else None
            view = CustomerView(
                customer=customer, identities=identities, birthplace=birthplace,
                timeline=timeline, cases=cases, consents=consents,
                tasks=self.crm.tasks.open_for_customer_in(session, customer.id),
            )
            shown = self.crm.access.view_for(actor, view, session)
            # A view is a read: whatever a timeline hook may have written is undone.
            session.rollback()
            return shown

    def disclose(self, customer_id: int, reason: str, actor: Actor | None = None
                 ) -> CustomerView:
        """The 360 view in full, for a role allowed to see this customer in full that a
        read showed masked (a manager); refused otherwise. Audited with the reason."""
        try:
            why = required_text(reason, "reason", 500)
        except ValueError as exc:
            raise InvalidInput("reason", str(exc)) from None
        with self.crm.unit_of_work(actor) as uow:
            customer = load_customer(uow.session, customer_id)
            self.crm.access.require_full(actor, customer, uow.session)
            self.crm.audit.record(uow, "disclose", customer_id=customer.id, reason=why)
        return self.view(customer.id)
