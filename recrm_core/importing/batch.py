"""One batch: resolved against what the database and earlier rows hold, then written."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from ..customers import current_for_write, owners_of_keys
from ..db import UnitOfWork, chunks, utcnow
from ..directory import refused_staff
from ..errors import UnknownProject
from ..importrecords import AT, Identity, derived
from ..importrecords import Batch as _Batch
from ..importrecords import Record as _Record
from ..models import Customer, ImportedCustomer, OwnerChange, RejectedRow, trusted
from ..projects import ensure_project_id
from ..resolution import (
    EXTERNAL,
    ID_CARD,
    MOBILE,
    STATE_FIELDS,
    WECHAT,
    Key,
    conflict_field,
    external_key,
    fill_changes,
    match_record,
)
from ..tables import ProjectRow
from .hookrecords import _LazyChanges, _LazyRecords
from .progress import _Applied, _Run
from .reads import _customer_state, _id_cards, _Link, _links_of, _load_many
from .writes import _write

if TYPE_CHECKING:
    from ..crm import CRM

_HOOK = "recrm_customers_imported"
_OWNERS_HOOK = "recrm_owners_changed"
#: the ``changed`` name of each identity kind
_KEY_FIELDS = {MOBILE: "mobiles", ID_CARD: "id_card", WECHAT: "wechat_unionids"}
_PROJECTS = cast(Table, ProjectRow.__table__)
_STATE_FIELDS = STATE_FIELDS
_state_values = itemgetter(*_STATE_FIELDS)
_reason = itemgetter(3)
#: where the batch's columns (importrecords.Batch.columns) hold what the loop reads
_PROJECT, _OWNER, _SOURCE, _ID_CARD = (AT[name] for name in (
    "project", "owner_staff", "source", "id_card"))
_KEYS, _IDENTITIES, _STATE = AT["keys"], AT["identities"], AT["state"]


class _NewRef(int):
    """A customer created by an earlier row of the batch, as a conflict names it: the
    batch knows it by a negative number (never a real id) until it is written, and a
    message by its row."""

    row: int

    def __new__(cls, value: int, row: int) -> _NewRef:
        ref = super().__new__(cls, value)
        ref.row = row
        return ref

    def __str__(self) -> str:
        return f"the new customer of row {self.row}"

    __repr__ = __str__


def _apply(crm: CRM, uow: UnitOfWork, run: _Run, batch: _Batch) -> _Applied:
    session = uow.session
    conn = session.connection()
    now = utcnow()
    # What the loop below needs of every record, read from the batch's columns; a
    # row's whole Record is built only where it is resolved against others (a match,
    # a conflict).
    rows = batch.valid_rows
    columns = batch.columns
    projects, owners_col = columns[_PROJECT], columns[_OWNER]
    states = columns[_STATE]
    codes = set(projects)
    codes.discard(None)
    codes.discard("")
    pids, new_projects = _project_ids(
        session, conn, run.projects, codes, create=crm.config.auto_create_projects
    )

    # Per record: its keys and a new customer's identities, as the worker derived
    # them, or derived here for rows validated before the keys were loaded.
    keys_of: Sequence[list[Key] | None] = columns[_KEYS]
    identities_of: Sequence[tuple[Identity, ...] | None] = columns[_IDENTITIES]
    if None in keys_of or None in identities_of:
        keys_of, identities_of = list(keys_of), list(identities_of)
        for i in range(len(rows)):
            if keys_of[i] is None or identities_of[i] is None:
                keys_of[i], identities_of[i] = derived(batch.record(i), run.keys)
                assert keys_of[i] is not None  # run.keys is loaded
    owners, existing = _owners_for_write(conn, set(chain.from_iterable(
        cast(list[list[Key]], keys_of))))
    state = _customer_state(conn, existing)
    cards = _id_cards(conn, existing)
    links = _links_of(conn, existing, sorted(set(pids.values())))

    #: the position in ``rows`` of each row that creates a customer; the
    #: customer of new_at[i] is known as -(i + 1) until written (see _NewRef)
    new_at: list[int] = []
    # the identities to insert, in groups (a new customer's, or one a match adds),
    # and the customer of each group
    identity_owners: list[int] = []
    identity_groups: list[tuple[Identity, ...]] = []
    new_links: dict[tuple[int, int], _Link] = {}
    filled_links: dict[int, _Link] = {}
    #: matched customers to update, with the names of what the batch changed
    touched: dict[int, set[str]] = {}
    merged_existing: dict[int, None] = {}  # ordered set: each matched customer once
    merged_rows = 0
    conflicts: list[RejectedRow] = []
    # What the hook is told: the rows behind each customer and the fields changed.
    rows_of: dict[int, list[int]] = {}
    changed_of: dict[int, set[str]] = {}
    owner_events: list[tuple[int, int, str, str]] = []  # customer, project, new owner, why

    def link(cid: int, rec: _Record) -> bool:
        """Link to the row's project, filling source/owner when empty; changed?"""
        pid = pids[rec.project]  # type: ignore[index]  # only called with one
        target = new_links.get((cid, pid)) or links.get((cid, pid))
        if target is None:
            new_links[(cid, pid)] = _Link(None, rec.owner_staff, rec.source)
            if rec.owner_staff:
                owner_events.append((cid, pid, rec.owner_staff, "first_link"))
            return True
        changed = False
        if target.owner_staff is None and rec.owner_staff:
            target.owner_staff, changed = rec.owner_staff, True
            owner_events.append(
                (cid, pid, rec.owner_staff, "first_link" if target.id is None else "filled")
            )
        if target.source is None and rec.source:
            target.source, changed = rec.source, True
        if changed and target.id is not None:
            filled_links[target.id] = target
        return changed

    def named(cid: int | None) -> int | None:
        """A customer as a message names it: a new one after its row."""
        return cid if cid is None or cid > 0 else _NewRef(cid, rows[new_at[-cid - 1]])

    def owner_of(key: Key) -> int | None:
        return named(owners.get(key))

    bad_staff = refused_staff(conn, crm.config.require_known_staff, set(owners_col),
                              assigned=True)
    known = owners.keys()  # a live view: keys the loop adds are in it
    for i, (row, project, owner, source, card, rec_keys, identities) in enumerate(zip(
            rows, projects, owners_col, columns[_SOURCE], columns[_ID_CARD],
            cast(Sequence[list[Key]], keys_of),
            cast(Sequence[tuple[Identity, ...]], identities_of), strict=True)):
        if project and project not in pids:
            conflicts.append(
                RejectedRow(row=row, field="project", reason=str(UnknownProject(project)))
            )
            continue
        if bad_staff and owner in bad_staff:
            conflicts.append(RejectedRow(row=row, field="owner_staff",
                                         reason=str(bad_staff[owner])))
            continue
        if known.isdisjoint(rec_keys):
            # No key is known: a new customer (what match_record would say, without
            # its work), with what the worker derived for it.
            ref = -(len(new_at) + 1)
            new_at.append(i)
            for key in rec_keys:
                owners[key] = ref
            identity_groups.append(identities)
            identity_owners.append(ref)
            if card is not None:
                cards[ref] = next(v for k, v in rec_keys if k == ID_CARD)
            if project:
                # a new customer's first link: nothing to look up
                pid = pids[project]
                new_links[(ref, pid)] = _Link(None, owner, source)
                if owner:
                    owner_events.append((ref, pid, owner, "first_link"))
            # What the hook is told about it comes from its record (its first row;
            # later rows of the batch that match it go to rows_of/changed_of), built
            # only if the records are read.
            continue
        rec = batch.record(i)
        match = match_record(rec, owner_of, cards.get, rec_keys)
        if match.conflict:
            conflicts.append(
                RejectedRow(row=row, field=conflict_field(rec), reason=match.conflict))
            continue
        cid = match.customer_id
        assert cid is not None  # a match without a conflict names its customer
        merged_rows += 1
        current = state.get(cid)
        if current is None:  # the new customer of an earlier row: its state to fill
            current = state[cid] = dict(zip(STATE_FIELDS, states[new_at[-cid - 1]],
                                            strict=True))
        changes = fill_changes(current, rec)
        for name, (_, new) in changes.items():
            current[name] = new
        changed = bool(changes)
        rows_of.setdefault(cid, []).append(row)
        fields = changed_of.setdefault(cid, set())
        fields.update(changes)
        if "external_id" in changes:
            owners[(EXTERNAL, external_key(current["source_system"], rec.external_id or ""))] \
                = cid
        shown = {(kind, value): display for kind, value, display in identities}
        for key in rec_keys:
            if key[0] != EXTERNAL and key not in owners:
                owners[key] = cid
                identity_owners.append(cid)
                identity_groups.append(((*key, shown[key]),))
                if key[0] == ID_CARD:
                    cards[cid] = key[1]
                fields.add(_KEY_FIELDS[key[0]])
                changed = True
        if project and link(cid, rec):
            fields.add("projects")
            changed = True
        if cid > 0:
            merged_existing[cid] = None
            if changed:
                touched[cid] = fields

    #: per new customer: its STATE_FIELDS
    created: list[tuple[Any, ...]] = list(map(states.__getitem__, new_at))
    for cid, held in state.items():  # new customers filled by later rows of the batch
        if cid < 0:
            created[-cid - 1] = _state_values(held)
    new_refs = list(range(-1, -len(new_at) - 1, -1))
    real = _write(conn, now, new_refs, created, state, identity_owners, identity_groups,
                  new_links, filled_links, touched)
    created_ids = list(real.values())
    if owner_events and crm.hooks.implemented(_OWNERS_HOOK):
        code_of = {pid: code for code, pid in pids.items()}

        def owner_changes() -> list[OwnerChange]:
            return [trusted(OwnerChange, {"customer_id": real.get(cid, cid),
                                          "project": code_of[pid], "old_owner": None,
                                          "new_owner": owner, "reason": why})
                    for cid, pid, owner, why in owner_events]

        crm.hooks.owners_changed(uow, _LazyChanges(
            owner_changes, len(owner_events), frozenset(map(_reason, owner_events))))
    if crm.hooks.implemented(_HOOK):
        # Customers created by this batch are reported as created only, even when
        # later rows of the batch matched them. Full models only on request: most
        # plugins need the ids and what changed, and building models for every
        # merged customer cost a quarter of the import's speed. The records
        # themselves are built on first access: the core's webhooks implement this
        # hook and, with no subscription wanting the events, never read them
        # (building them was ~10 % of the importing process).
        def build() -> list[ImportedCustomer]:
            out = []
            for ref, at, row_state in zip(new_refs, new_at, created, strict=True):
                first_row = rows[at]
                fields = {name for name, v in zip(STATE_FIELDS, row_state, strict=True)
                          if v is not None}
                fields.update(_KEY_FIELDS[kind] for kind, _ in keys_of[at] or ()
                              if kind in _KEY_FIELDS)
                if projects[at]:
                    fields.add("projects")
                fields.update(changed_of.get(ref, ()))
                out.append(trusted(ImportedCustomer, {
                    "customer_id": real[ref], "created": True,
                    "changed": sorted(fields), "rows": [first_row, *rows_of.get(ref, ())]}))
            out.extend(
                trusted(ImportedCustomer, {"customer_id": cid, "created": False,
                                           "changed": sorted(changed_of[cid]),
                                           "rows": rows_of[cid]})
                for cid in merged_existing
            )
            return out

        imported = _LazyRecords(build, len(new_refs) + len(merged_existing))
        running = True

        def load(ids: Iterable[int]) -> dict[int, Customer]:
            # Afterwards the session would begin a transaction that no one ends.
            if not running:
                raise RuntimeError("load() works only while recrm_customers_imported"
                                   " runs: its batch has been committed")
            return _load_many(session, list(ids))

        try:
            crm.hooks.customers_imported(uow, records=imported, load=load)
        finally:
            running = False
    return _Applied(created_ids, merged_rows, conflicts, new_projects)


def _owners_for_write(conn: Connection, keys: set[Key]) -> tuple[dict[Key, int], list[int]]:
    """Which customer holds each of the batch's keys, and those customers in id order,
    locked against a merge until the batch commits (PostgreSQL).

    Without the lock a merge committing between this lookup and the batch's writes
    left them on the merged-away record (its UPDATE waits for the merge, then matches
    the row by id). A customer merged or erased meanwhile drops out of the locked set:
    the keys are read again, now naming the survivor (or nobody). On SQLite the
    batch's transaction began with BEGIN IMMEDIATE, after any merge committed."""
    while True:
        owners = owners_of_keys(conn, keys)
        existing = sorted(set(owners.values()))
        if conn.dialect.name != "postgresql" or len(current_for_write(conn, existing)) \
                == len(existing):
            return owners, existing


def _project_ids(
    session: Session, conn: Connection, known: dict[str, int], codes: set[str],
    *, create: bool,
) -> tuple[dict[str, int], dict[str, int]]:
    """Code -> id for every project of the batch, creating new ones when
    ``create`` (else unknown codes are left out); also the ids this batch
    resolved that are not yet known to be committed."""
    pids = {code: known[code] for code in codes if code in known}
    missing = sorted(codes - pids.keys())
    fresh: dict[str, int] = {}
    for chunk in chunks(missing):
        for code, pid in conn.execute(
            select(_PROJECTS.c.code, _PROJECTS.c.id).where(_PROJECTS.c.code.in_(chunk))
        ):
            fresh[code] = pid
    for code in missing:
        if code not in fresh and create:
            fresh[code] = ensure_project_id(session, code)
    pids.update(fresh)
    return pids, fresh
