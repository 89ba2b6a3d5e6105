"""Reading customers: the API models built from their rows, ids resolved through merges,
the holders of identity keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    func,
    select,
    tuple_,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import FromClause, Select

from .. import sqlitebatch
from ..db import chunks, valid_id
from ..errors import NotFound
from ..idcards import decrypt_on
from ..models import (
    Customer,
    ProjectLink,
    trusted,
)
from ..rawsql import RawSelect
from ..resolution import (
    EXTERNAL,
    ID_CARD,
    MOBILE,
    WECHAT,
    Key,
    external_key,
)
from ..tables import (
    CustomerProjectRow,
    CustomerRow,
    IdentityRow,
    ProjectRow,
)

if TYPE_CHECKING:
    pass


# Prebuilt statements: building a select() costs more than running it on an indexed
# key, and a prebuilt one also reuses its cached compiled form without recomputing
# the cache key.
_CT = cast(Table, CustomerRow.__table__)
_IT = cast(Table, IdentityRow.__table__)
_LT = cast(Table, CustomerProjectRow.__table__)
_PT = cast(Table, ProjectRow.__table__)
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_ONE: BindParameter[int] = bindparam("id")
#: Customer fields read straight from the customers row, in column order
_ROW_FIELDS = ("id", "name", "gender", "birth_date", "persona", "budget", "email", "stage",
               "source_system", "external_id", "merged_into", "created_at", "updated_at",
               "erased_at")
_SELECT_ROWS = select(*(_CT.c[name] for name in _ROW_FIELDS)).where(_CT.c.id.in_(_IDS))
_IDENTITIES_OF = select(_IT.c.customer_id, _IT.c.kind, _IT.c.display).order_by(_IT.c.id)
_LINKS_OF = (
    select(_LT.c.customer_id, _PT.c.code, _PT.c.name, _LT.c.stage, _LT.c.owner_staff,
           _LT.c.source, _LT.c.first_seen_at)
    .join(_PT, _PT.c.id == _LT.c.project_id)
    .order_by(_LT.c.id)
)
_SELECT_IDENTITIES = _IDENTITIES_OF.where(_IT.c.customer_id.in_(_IDS))
_SELECT_LINKS = _LINKS_OF.where(_LT.c.customer_id.in_(_IDS))
_KEY = _IT.alias("key")
_ALL_IDS = _IT.alias("ids")
#: a customer row joined to each of its identities and project links (ordered by
#: neither: ``_holder_of`` orders them): one statement where three would be
_WHOLE_CUSTOMER = (
    select(*(_CT.c[name] for name in _ROW_FIELDS),
           _ALL_IDS.c.id, _ALL_IDS.c.kind, _ALL_IDS.c.display,
           _LT.c.id, _PT.c.code, _PT.c.name, _LT.c.stage, _LT.c.owner_staff, _LT.c.source,
           _LT.c.first_seen_at)
)


def _with_identities_and_links(customers: FromClause) -> FromClause:
    """``customers`` (the customers table, or a join ending in it) with what
    ``_WHOLE_CUSTOMER`` selects besides the row."""
    return (customers.outerjoin(_ALL_IDS, _ALL_IDS.c.customer_id == _CT.c.id)
            .outerjoin(_LT, _LT.c.customer_id == _CT.c.id)
            .outerjoin(_PT, _PT.c.id == _LT.c.project_id))


#: the holder of one identity key, whole
_SELECT_BY_KEY = (
    _WHOLE_CUSTOMER
    .select_from(_with_identities_and_links(_KEY.join(_CT, _CT.c.id == _KEY.c.customer_id)))
    .where(_KEY.c.kind == bindparam("kind"), _KEY.c.value == bindparam("value"))
)
#: one customer, whole (a round trip for three on PostgreSQL)
_SELECT_WHOLE = _WHOLE_CUSTOMER.select_from(_with_identities_and_links(_CT)).where(_CT.c.id == _ONE)
_SELECT_MERGED_INTO = select(_CT.c.merged_into, _CT.c.erased_at).where(_CT.c.id == _ONE)
_SELECT_MANY_MERGED_INTO = select(_CT.c.id, _CT.c.merged_into, _CT.c.erased_at).where(
    _CT.c.id.in_(_IDS))
# A writer's resolution: FOR KEY SHARE conflicts with the merge's FOR UPDATE only, so
# writers never wait for each other; on SQLite (writers serialised by BEGIN IMMEDIATE)
# the dialect leaves the clause out. Rows locked in id order, as the merge locks them.
_SELECT_MERGED_INTO_LOCKED = _SELECT_MERGED_INTO.with_for_update(read=True, key_share=True)
_SELECT_MANY_MERGED_INTO_LOCKED = _SELECT_MANY_MERGED_INTO.order_by(_CT.c.id).with_for_update(
    read=True, key_share=True)
# The single-customer statements run on the driver's cursor (see RawSelect).
_RAW_BY_KEY = RawSelect(_SELECT_BY_KEY)
_RAW_WHOLE = RawSelect(_SELECT_WHOLE)
_RAW_MERGED_INTO = RawSelect(_SELECT_MERGED_INTO)
_RAW_MERGED_INTO_LOCKED = RawSelect(_SELECT_MERGED_INTO_LOCKED)
#: the holder of one identity (owners_of_keys, for a single key)
_RAW_OWNER = RawSelect(select(_IT.c.customer_id).where(
    _IT.c.kind == bindparam("kind"), _IT.c.value == bindparam("value")))
_WIDTH = len(_ROW_FIELDS)
_MERGED_INTO = _ROW_FIELDS.index("merged_into")
_ERASED_AT = _ROW_FIELDS.index("erased_at")
#: the fields a loaded customer counts as set: all but ``masked``, which stays at its
#: default as when the model is validated from the same values
_FIELDS_SET = frozenset(Customer.model_fields) - {"masked"}


def _connection(session: Session | Connection) -> Connection:
    """The connection to read on, after flushing a session's pending ORM changes:
    reads below go through Core, which does not autoflush as ``session.execute``
    would."""
    if isinstance(session, Connection):
        return session
    session.flush()
    return session.connection()


def load_customers(session: Session | Connection, ids: Iterable[int]) -> dict[int, Customer]:
    """Build API models for ``ids`` with three queries, whatever their number."""
    id_list = [i for i in dict.fromkeys(ids) if valid_id(i)]
    if not id_list:
        return {}
    conn = _connection(session)
    if len(id_list) == 1:
        rows = _RAW_WHOLE.all(conn, {"id": id_list[0]})
        if not rows or rows[0][_ERASED_AT] is not None:
            return {}  # an erased person is no customer any more
        return {id_list[0]: _whole(conn, rows)}
    rows = [tuple(r) for r in conn.execute(_SELECT_ROWS, {"ids": id_list})]
    return _build(conn, rows, id_list)


def _build(
    conn: Connection, rows: Sequence[tuple[Any, ...]], id_list: list[int]
) -> dict[int, Customer]:
    """API models for customers rows (``_ROW_FIELDS``) of ``id_list`` (several: one is
    ``_SELECT_WHOLE``'s).

    The values come from our own columns, which only ever hold what the models
    validated on the way in, so the models are built without validating again
    (:func:`~recrm_core.models.trusted`); tests compare this with validated
    construction.
    """
    params = {"ids": id_list}
    identities = conn.execute(_SELECT_IDENTITIES, params)
    link_rows = conn.execute(_SELECT_LINKS, params)
    mobiles: dict[int, list[str]] = {}
    cards: dict[int, str] = {}
    unionids: dict[int, list[str]] = {}
    for cid, kind, display in identities:
        if kind == MOBILE:
            mobiles.setdefault(cid, []).append(display)
        elif kind == ID_CARD:
            # Decrypted here, where it is shown, and nowhere else (matching uses the
            # stored hash); a wrong key raises rather than show a wrong number.
            cards[cid] = decrypt_on(conn, display)
        elif kind == WECHAT:
            unionids.setdefault(cid, []).append(display)
    links: dict[int, list[ProjectLink]] = {}
    for cid, code, pname, stage, owner, source, first_seen in link_rows:
        links.setdefault(cid, []).append(
            trusted(ProjectLink, {"project": code, "project_name": pname, "stage": stage,
                                  "owner_staff": owner, "source": source,
                                  "first_seen_at": first_seen})
        )
    out: dict[int, Customer] = {}
    for row in rows:
        if row[_ERASED_AT] is not None:
            continue  # an erased person is no customer any more
        cid = row[0]
        out[cid] = _model_of(row, mobiles.get(cid, []), cards.get(cid), unionids.get(cid, []),
                             links.get(cid, []))
    return out


def _model_of(
    row: Sequence[Any], mobiles: list[str], id_card: str | None, unionids: list[str],
    links: list[ProjectLink],
) -> Customer:
    """The API model of one customers row (``_ROW_FIELDS`` order) and what hangs off
    it: the one place a Customer is assembled, from a read or from what was written."""
    (cid, name, gender, birth_date, persona, budget, email, stage, source_system,
     external_id, merged_into, created_at, updated_at, _erased_at) = row
    return trusted(Customer, {
        "id": cid,
        "name": name,
        "gender": gender,
        "birth_date": birth_date,
        "persona": persona,
        "budget": budget,
        "email": email,
        "mobiles": mobiles,
        "id_card": id_card,
        "wechat_unionids": unionids,
        "stage": stage,
        "projects": links,
        "source_system": source_system,
        "external_id": external_id,
        "merged_into": merged_into,
        "created_at": created_at,
        "updated_at": updated_at,
        "masked": False,
    }, set(_FIELDS_SET))


def resolve_id(session: Session | Connection, customer_id: int) -> int:
    """Follow ``merged_into`` to the surviving customer; NotFound if there is none.

    For reads: a write for the customer resolves with :func:`resolve_for_write`."""
    return _resolve(session, customer_id, _RAW_MERGED_INTO)


def resolve_for_write(session: Session | Connection, customer_id: int) -> int:
    """:func:`resolve_id` for a write about to land on the customer: the survivor,
    locked against a merge until the write's transaction ends, in the same one read
    when nothing is merged.

    Without the lock a write racing a merge lands on the merged-away record: the
    foreign key's check on PostgreSQL takes FOR KEY SHARE, which the merge's UPDATE of
    ``merged_into`` does not wait for. Here the read itself takes FOR KEY SHARE, which
    the merge's FOR UPDATE does wait for (and which waits for a merge holding it, then
    reads the row as the merge left it: a merged id follows to the survivor, locked
    too). Writers never wait for each other. On SQLite writers are already serialised
    (``BEGIN IMMEDIATE``: a writer's first read comes after a merge commits), so the
    read is the plain one."""
    return _resolve(session, customer_id, _RAW_MERGED_INTO_LOCKED)


def _resolve(session: Session | Connection, customer_id: int, read: RawSelect) -> int:
    """The survivor of ``customer_id`` (``read``: ``_SELECT_MERGED_INTO``, locking or not)."""
    if not valid_id(customer_id):
        raise NotFound(f"no customer {customer_id}")
    conn = _connection(session)
    seen: set[int] = set()
    current = customer_id
    while True:
        merged_into = read.all(conn, {"id": current})
        if not merged_into:
            raise NotFound(f"no customer {customer_id}")
        if merged_into[0][1] is not None:
            raise erased(customer_id, merged_into[0][1])
        if merged_into[0][0] is None or current in seen:
            return current
        seen.add(current)
        current = merged_into[0][0]


def resolve_ids(session: Session | Connection, customer_ids: Iterable[int]) -> dict[int, int]:
    """:func:`resolve_id` for many ids, with one read per few hundred of them (a
    merged id then follows its chain); the error is the first failing id's, in order."""
    return _resolve_many(session, customer_ids, _SELECT_MANY_MERGED_INTO, resolve_id)


def resolve_ids_for_write(
    session: Session | Connection, customer_ids: Iterable[int]
) -> dict[int, int]:
    """:func:`resolve_ids` for a write, each survivor locked as
    :func:`resolve_for_write` locks one."""
    return _resolve_many(session, customer_ids, _SELECT_MANY_MERGED_INTO_LOCKED,
                         resolve_for_write)


def current_for_write(session: Session | Connection, customer_ids: Iterable[int]) -> set[int]:
    """Which of ``customer_ids`` are still customers of their own (neither merged away
    nor erased), each locked as :func:`resolve_for_write` locks one.

    For a batch job that read its candidates without a lock (a sweep): a merge or an
    erasure that committed meanwhile drops the customer from the batch instead of
    failing it, and one arriving later waits for the job to commit."""
    states = _merge_states(_connection(session), customer_ids, _SELECT_MANY_MERGED_INTO_LOCKED)
    return {cid for cid, (into, at) in states.items() if into is None and at is None}


def _merge_states(conn: Connection, customer_ids: Iterable[int], read: Select[Any]
                  ) -> dict[int, tuple[int | None, dt.datetime | None]]:
    """``merged_into`` and ``erased_at`` of the customers among ``customer_ids``, read
    with ``read`` (locking or not) a few hundred ids a statement, in id order."""
    states: dict[int, tuple[int | None, dt.datetime | None]] = {}
    for part in chunks(sorted({cid for cid in customer_ids if valid_id(cid)})):
        states.update((cid, (into, at)) for cid, into, at in conn.execute(read, {"ids": part}))
    return states


def _resolve_many(
    session: Session | Connection, customer_ids: Iterable[int], read: Select[Any],
    one: Callable[[Session | Connection, int], int],
) -> dict[int, int]:
    """:func:`resolve_ids`' rule with ``read`` for many and ``one`` for one id."""
    wanted = list(dict.fromkeys(customer_ids))
    conn = _connection(session)
    if len(wanted) == 1:
        return {wanted[0]: one(conn, wanted[0])}
    rows = _merge_states(conn, wanted, read)
    resolved: dict[int, int] = {}
    for cid in wanted:
        found = rows.get(cid)
        if found is None:
            raise NotFound(f"no customer {cid}")
        into, at = found
        if at is not None:
            raise erased(cid, at)
        resolved[cid] = cid if into is None else one(conn, cid)
    return resolved


def erased(customer_id: int, at: dt.datetime) -> NotFound:
    """The error naming an erased customer (every command naming them exits 1 with it)."""
    return NotFound(f"customer {customer_id} was erased on {at.date().isoformat()}")


def load_customer(session: Session | Connection, customer_id: int) -> Customer:
    """The customer, or the survivor it was merged into; NotFound if there is none."""
    if not valid_id(customer_id):
        raise NotFound(f"no customer {customer_id}")
    conn = _connection(session)
    rows = _RAW_WHOLE.all(conn, {"id": customer_id})
    if rows and rows[0][_ERASED_AT] is not None:
        raise erased(customer_id, rows[0][_ERASED_AT])
    if rows and rows[0][_MERGED_INTO] is None:
        # Not merged away (the common case): the rows just read are the customer's.
        return _whole(conn, rows)
    cid = resolve_id(conn, customer_id)
    return load_customers(conn, [cid])[cid]


def customer_by_key(session: Session | Connection, key: Key) -> Customer | None:
    """The customer holding an identity key (the survivor, should the holder have
    been merged away), or None: one indexed query."""
    conn = _connection(session)
    rows = _RAW_BY_KEY.all(conn, {"kind": key[0], "value": key[1]})
    if rows and _moved(rows[0]):
        return _moved_holder(conn, rows[0][0])
    return _holder_of(rows, lambda text: decrypt_on(conn, text))


def _whole(conn: Connection, rows: Sequence[Sequence[Any]]) -> Customer:
    """The customer of ``_SELECT_WHOLE``'s rows (at least one)."""
    return cast(Customer, _holder_of(rows, lambda text: decrypt_on(conn, text)))


def _moved(row: Sequence[Any]) -> bool:
    """Whether a key's holder (``_SELECT_BY_KEY``'s row) was merged away or erased."""
    return row[_MERGED_INTO] is not None or row[_ERASED_AT] is not None


def _moved_holder(conn: Connection, cid: int) -> Customer:
    """The survivor of a key's holder merged away (or NotFound for an erased one).
    Merges move identities to the survivor, so this is only a safety net. Its several
    reads share one snapshot, whether or not the caller opened one."""
    if not conn.in_transaction():
        with conn.begin():
            return load_customer(conn, cid)
    return load_customer(conn, cid)


def _holder_of(
    rows: Sequence[Sequence[Any]], decrypt_card: Callable[[str], str]
) -> Customer | None:
    """The customer of ``_SELECT_BY_KEY``'s or ``_SELECT_WHOLE``'s rows (the holder
    neither merged away nor erased), or None for none: the row comes with every
    identity and link of the customer (a row per identity and link pair, usually one),
    each kept once, in id order."""
    if not rows:
        return None
    width = _WIDTH
    first = rows[0]
    identities: Iterable[tuple[str, str]]
    if len(rows) == 1:
        # Most customers: one identity (the key just looked up), one link or none.
        identities = () if first[width] is None else ((first[width + 1], first[width + 2]),)
        links = [] if first[width + 3] is None else [_link_of(first)]
    else:
        by_id: dict[int, tuple[str, str]] = {}
        links_by_id: dict[int, ProjectLink] = {}
        for r in rows:
            if r[width] is not None and r[width] not in by_id:
                by_id[r[width]] = (r[width + 1], r[width + 2])
            if r[width + 3] is not None and r[width + 3] not in links_by_id:
                links_by_id[r[width + 3]] = _link_of(r)
        identities = [by_id[i] for i in sorted(by_id)]
        links = [links_by_id[i] for i in sorted(links_by_id)]
    mobiles: list[str] = []
    unionids: list[str] = []
    card: str | None = None
    for kind, display in identities:
        if kind == MOBILE:
            mobiles.append(display)
        elif kind == WECHAT:
            unionids.append(display)
        elif kind == ID_CARD and card is None:
            card = display
    return _model_of(first[:width], mobiles, None if card is None else decrypt_card(card),
                     unionids, links)


def _link_of(row: Sequence[Any]) -> ProjectLink:
    """The project link in a row of ``_WHOLE_CUSTOMER`` (it has one)."""
    at = _WIDTH + 4
    return trusted(ProjectLink, {
        "project": row[at], "project_name": row[at + 1], "stage": row[at + 2],
        "owner_staff": row[at + 3], "source": row[at + 4], "first_seen_at": row[at + 5]})


def owners_of_keys(session: Session | Connection, keys: Iterable[Key]) -> dict[Key, int]:
    """Which customer holds each key (identities and external references): a few
    indexed IN queries per kind, however many keys."""
    conn = _connection(session)
    if not isinstance(keys, Sequence):
        keys = list(keys)
    if len(keys) == 1 and keys[0][0] != EXTERNAL:
        # One identity, as most adds have (a mobile): one indexed lookup on the
        # driver's cursor, a third of the SQLAlchemy execution it replaces.
        rows = _RAW_OWNER.all(conn, {"kind": keys[0][0], "value": keys[0][1]})
        return {keys[0]: rows[0][0]} if rows else {}
    if conn.dialect.name == "postgresql":
        from .. import bulkcopy  # the import's module; a single add needs it only here

        return bulkcopy.owners_of_keys(conn, keys)
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    found: dict[Key, int] = {}
    cc = CustomerRow.__table__.c
    for kind, values in by_kind.items():
        values.sort()
        if kind == EXTERNAL:
            pairs = [tuple(v.split("\x1f", 1)) for v in values]
            for chunk in chunks(pairs):
                # A merged-away customer keeps its reference when the survivor has one
                # of its own: the reference resolves to the survivor (merges keep
                # ``merged_into`` flat), else a row carrying it would hit the UNIQUE.
                for system, ext_id, cid in conn.execute(
                    select(
                        cc.source_system, cc.external_id, func.coalesce(cc.merged_into, cc.id)
                    ).where(tuple_(cc.source_system, cc.external_id).in_(chunk))
                ):
                    found[(EXTERNAL, external_key(system, ext_id))] = cid
            continue
        for value, cid in sqlitebatch.identity_owners(conn, kind, values).items():
            found[(kind, value)] = cid
    return found


def id_cards_of(session: Session | Connection, customer_ids: Iterable[int]) -> dict[int, str]:
    ids = list(customer_ids)
    if not ids:
        return {}
    return {
        cid: value
        for cid, value in session.execute(
            select(IdentityRow.customer_id, IdentityRow.value).where(
                IdentityRow.kind == ID_CARD, IdentityRow.customer_id.in_(ids)
            )
        )
    }
