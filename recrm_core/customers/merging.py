"""Merging two customers, and reassigning a consultant's customers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import (
    and_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..access import OWNERSHIP_MANAGERS, check_writer, require_role
from ..contention import StateMoved
from ..db import UnitOfWork, utcnow
from ..errors import IdentityConflict, InvalidInput
from ..models import (
    Actor,
    Customer,
    OwnerChange,
)
from ..projects import known_project_id, project_code
from ..tables import (
    CaseRow,
    ConsentRow,
    CustomerProjectRow,
    CustomerRow,
    IdentityRow,
    InteractionRow,
)
from ..values import STAGE_RANK, required_code
from .changes import (
    _owner_change,
    _project_codes,
    _refuse_merged,
    _Service,
    recompute_stage,
)
from .loading import (
    id_cards_of,
    load_customer,
    resolve_id,
)

if TYPE_CHECKING:
    pass


class _Merging(_Service):
    """``merge`` and ``reassign``."""

    def merge(self, survivor_id: int, duplicate_id: int, actor: Actor | None = None) -> Customer:
        """Merge ``duplicate_id`` into ``survivor_id``: identities, project links,
        interactions, cases and consents move; empty profile fields are filled; the
        duplicate keeps resolving to the survivor; every plugin moves its rows.

        Both customers are locked in id order before anything is decided, so two
        merges of overlapping customers at once run one after the other; the second
        sees what the first did (``already merged into N``), never a loop."""
        check_writer(actor)
        return self._retrying(actor, lambda uow: self._merge(uow, survivor_id, duplicate_id))

    def _merge(self, uow: UnitOfWork, survivor_id: int, duplicate_id: int) -> Customer:
        session = uow.session
        sid = resolve_id(session, survivor_id)
        did = resolve_id(session, duplicate_id)
        _refuse_merged(survivor_id, sid, duplicate_id, did)
        # Lock in id order (two merges of a and b in opposite orders would otherwise
        # each hold one lock and wait for the other), then check that neither was
        # merged away between the resolution above and the lock.
        for cid in sorted((sid, did)):
            merged_into = session.execute(
                select(CustomerRow.merged_into).where(CustomerRow.id == cid).with_for_update()
            ).scalar_one()
            if merged_into is not None:
                raise StateMoved(f"customer {cid} was merged meanwhile")
        cards = id_cards_of(session, [sid, did])
        if sid in cards and did in cards and cards[sid] != cards[did]:
            raise IdentityConflict(
                f"customers {sid} and {did} hold different ID cards", [sid, did], "id_card")
        survivor = session.get_one(CustomerRow, sid, populate_existing=True)
        duplicate = session.get_one(CustomerRow, did, populate_existing=True)
        for name in ("name", "gender", "birth_date", "persona", "budget", "email"):
            if getattr(survivor, name) is None and getattr(duplicate, name) is not None:
                setattr(survivor, name, getattr(duplicate, name))
        if survivor.external_id is None and duplicate.external_id is not None:
            ref = (duplicate.source_system, duplicate.external_id)
            duplicate.source_system = duplicate.external_id = None
            session.flush()
            survivor.source_system, survivor.external_id = ref
        session.execute(update(IdentityRow).where(IdentityRow.customer_id == did)
                        .values(customer_id=sid))
        owner_changes = self._merge_links(session, sid, did)
        for table in (InteractionRow, CaseRow, ConsentRow):
            session.execute(update(table).where(table.customer_id == did)
                            .values(customer_id=sid))
        # Keep chains flat: anything merged into the duplicate now points at the survivor.
        session.execute(update(CustomerRow).where(CustomerRow.merged_into == did)
                        .values(merged_into=sid))
        duplicate.merged_into = sid
        duplicate.updated_at = survivor.updated_at = utcnow()
        session.flush()
        recompute_stage(session, sid)
        customer = load_customer(session, sid)
        self.crm.audit.record(uow, "merge", customer_id=sid, details={"duplicate_id": did})
        self.crm.hooks.customer_merged(uow, customer, did)
        self.crm.hooks.owners_changed(uow, owner_changes)
        return customer

    @staticmethod
    def _merge_links(session: Session, sid: int, did: int) -> list[OwnerChange]:
        """Move the duplicate's project links to the survivor (combining two links to
        one project); the survivor's owner changes this makes."""
        mine = {
            link.project_id: link
            for link in session.scalars(
                select(CustomerProjectRow).where(CustomerProjectRow.customer_id == sid)
            )
        }
        theirs = session.scalars(
            select(CustomerProjectRow).where(CustomerProjectRow.customer_id == did)
        ).all()
        codes = _project_codes(session, {link.project_id for link in theirs})
        changes: list[OwnerChange] = []
        for link in theirs:
            kept = mine.get(link.project_id)
            if kept is None:
                link.customer_id = sid
                change = _owner_change(sid, codes[link.project_id], None, link.owner_staff,
                                       "merge")
            else:
                if STAGE_RANK[link.stage] > STAGE_RANK[kept.stage]:
                    kept.stage, kept.stage_changed_at = link.stage, link.stage_changed_at
                kept.first_seen_at = min(kept.first_seen_at, link.first_seen_at)
                change = _owner_change(sid, codes[link.project_id], kept.owner_staff,
                                       kept.owner_staff or link.owner_staff, "merge")
                kept.owner_staff = kept.owner_staff or link.owner_staff
                kept.source = kept.source or link.source
                session.delete(link)
            if change is not None:
                changes.append(change)
        session.flush()
        return changes

    def reassign(
        self, from_staff: str, to_staff: str, project: str | None = None,
        actor: Actor | None = None,
    ) -> int:
        """Move ownership of every customer-project link from one consultant to another;
        returns how many links moved. For admins and managers."""
        check_writer(actor)
        require_role(actor, OWNERSHIP_MANAGERS, "reassign customers")
        try:
            source = required_code(from_staff, "staff id", 64)
            target = required_code(to_staff, "staff id", 64)
        except ValueError as exc:
            raise InvalidInput("staff", str(exc)) from None
        with self.crm.unit_of_work(actor) as uow:
            return self.reassign_in(uow, source, target, project)

    def reassign_in(self, uow: UnitOfWork, source: str, target: str,
                    project: str | None = None) -> int:
        """:meth:`reassign` inside a running operation (``staff leave --reassign-to``)."""
        self.crm.directory.check(uow, [target])
        conditions = [CustomerProjectRow.owner_staff == source]
        if project is not None:
            pid = known_project_id(uow.session, project_code(project))
            conditions.append(CustomerProjectRow.project_id == pid)
        moved = [(cid, pid) for cid, pid in uow.session.execute(
            update(CustomerProjectRow).where(and_(*conditions)).values(owner_staff=target)
            .returning(CustomerProjectRow.customer_id, CustomerProjectRow.project_id)
        )]
        codes = _project_codes(uow.session, {pid for _, pid in moved})
        changes = [_owner_change(cid, codes[pid], source, target, "reassign")
                   for cid, pid in sorted(moved)]
        self.crm.audit.record(uow, "reassign", details={
            "from_staff": source, "to_staff": target, "project": project,
            "links": len(moved), "customers": sorted({cid for cid, _ in moved})[:1000]})
        self.crm.hooks.owners_changed(uow, [c for c in changes if c is not None])
        return len(moved)
