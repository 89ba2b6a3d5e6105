"""The customer service: add with identity resolution, update, find, stages, merge,
reassign and the 360 view."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import ValidationError
from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from . import identity, sqlitebatch
from .access import check_writer
from .contention import StateMoved, retrying
from .db import RawSelect, RawWrite, UnitOfWork, chunks, read_engine, utcnow, valid_id
from .errors import Forbidden, IdentityConflict, InvalidInput, NotFound, Refused
from .idcards import decrypt, decrypt_on, encrypt, keys_for_storing, match_value
from .models import (
    Actor,
    AddResult,
    Customer,
    CustomerIn,
    CustomerUpdate,
    CustomerView,
    DuplicatePair,
    IdentityEntry,
    Interaction,
    OwnerChange,
    ProjectLink,
    StageChange,
    StageMove,
    TimelineEntry,
    first_error,
    trusted,
)
from .projects import known_project_id, project_code, project_id_in
from .resolution import (
    EXTERNAL,
    ID_CARD,
    KEY_LABELS,
    MOBILE,
    WECHAT,
    Key,
    conflict_field,
    external_key,
    fill_changes,
    match_record,
    record_keys,
)
from .tables import (
    CaseRow,
    ConsentRow,
    CustomerProjectRow,
    CustomerRow,
    IdentityRow,
    InteractionRow,
    ProjectRow,
)
from .values import STAGE_RANK, STAGES, parse_stage, required_code, required_text, zoned

if TYPE_CHECKING:
    from .crm import CRM

#: the interaction a stage change records (认购 / 签约 / 交房)
STAGE_INTERACTIONS = {"subscriber": "subscription", "buyer": "contract", "owner": "handover"}
_T = TypeVar("_T")


def validate_record(data: CustomerIn | Mapping[str, Any], region: str = "CN") -> CustomerIn:
    """Validate one record; ``region`` is the default region of mobiles without ``+``."""
    if isinstance(data, CustomerIn):
        return data
    try:
        return CustomerIn.model_validate(dict(data), context={"region": region})
    except ValidationError as exc:
        raise InvalidInput(*first_error(exc)) from None


# -- reading ------------------------------------------------------------------------------


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
_SELECT_ROW = select(*(_CT.c[name] for name in _ROW_FIELDS)).where(_CT.c.id == _ONE)
_IDENTITIES_OF = select(_IT.c.customer_id, _IT.c.kind, _IT.c.display).order_by(_IT.c.id)
_LINKS_OF = (
    select(_LT.c.customer_id, _PT.c.code, _PT.c.name, _LT.c.stage, _LT.c.owner_staff,
           _LT.c.source, _LT.c.first_seen_at)
    .join(_PT, _PT.c.id == _LT.c.project_id)
    .order_by(_LT.c.id)
)
# ``= :id`` for one customer (the common case): an expanding IN is re-rendered on
# every execution.
_SELECT_IDENTITIES = (
    _IDENTITIES_OF.where(_IT.c.customer_id.in_(_IDS)),
    _IDENTITIES_OF.where(_IT.c.customer_id == _ONE),
)
_SELECT_LINKS = (
    _LINKS_OF.where(_LT.c.customer_id.in_(_IDS)),
    _LINKS_OF.where(_LT.c.customer_id == _ONE),
)
_KEY = _IT.alias("key")
_ALL_IDS = _IT.alias("ids")
#: the customer row of the holder of one identity key, joined to each of its
#: identities and project links (ordered by neither: customer_by_key orders them)
_SELECT_BY_KEY = (
    select(*(_CT.c[name] for name in _ROW_FIELDS),
           _ALL_IDS.c.id, _ALL_IDS.c.kind, _ALL_IDS.c.display,
           _LT.c.id, _PT.c.code, _PT.c.name, _LT.c.stage, _LT.c.owner_staff, _LT.c.source,
           _LT.c.first_seen_at)
    .select_from(_KEY)
    .join(_CT, _CT.c.id == _KEY.c.customer_id)
    .outerjoin(_ALL_IDS, _ALL_IDS.c.customer_id == _CT.c.id)
    .outerjoin(_LT, _LT.c.customer_id == _CT.c.id)
    .outerjoin(_PT, _PT.c.id == _LT.c.project_id)
    .where(_KEY.c.kind == bindparam("kind"), _KEY.c.value == bindparam("value"))
)
_SELECT_MERGED_INTO = select(_CT.c.merged_into, _CT.c.erased_at).where(_CT.c.id == _ONE)
_SELECT_MANY_MERGED_INTO = select(_CT.c.id, _CT.c.merged_into, _CT.c.erased_at).where(
    _CT.c.id.in_(_IDS))
# The single-customer statements run on the driver's cursor (see RawSelect).
_RAW_ROW = RawSelect(_SELECT_ROW)
_RAW_IDENTITIES = RawSelect(_SELECT_IDENTITIES[1])
_RAW_LINKS = RawSelect(_SELECT_LINKS[1])
_RAW_BY_KEY = RawSelect(_SELECT_BY_KEY)
_RAW_MERGED_INTO = RawSelect(_SELECT_MERGED_INTO)
#: the holder of one identity (owners_of_keys, for a single key)
_RAW_OWNER = RawSelect(select(_IT.c.customer_id).where(
    _IT.c.kind == bindparam("kind"), _IT.c.value == bindparam("value")))
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
        rows = _RAW_ROW.all(conn, {"id": id_list[0]})
    else:
        rows = [tuple(r) for r in conn.execute(_SELECT_ROWS, {"ids": id_list})]
    return _build(conn, rows, id_list)


def _build(
    conn: Connection, rows: Sequence[tuple[Any, ...]], id_list: list[int]
) -> dict[int, Customer]:
    """API models for customers rows (``_ROW_FIELDS``) of ``id_list``.

    The values come from our own columns, which only ever hold what the models
    validated on the way in, so the models are built without validating again
    (:func:`~recrm_core.models.trusted`); tests compare this with validated
    construction.
    """
    if len(id_list) == 1:
        params: dict[str, Any] = {"id": id_list[0]}
        identities: Iterable[Any] = _RAW_IDENTITIES.all(conn, params)
        link_rows: Iterable[Any] = _RAW_LINKS.all(conn, params)
    else:
        params = {"ids": id_list}
        identities = conn.execute(_SELECT_IDENTITIES[0], params)
        link_rows = conn.execute(_SELECT_LINKS[0], params)
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
    """Follow ``merged_into`` to the surviving customer; NotFound if there is none."""
    if not valid_id(customer_id):
        raise NotFound(f"no customer {customer_id}")
    conn = _connection(session)
    seen: set[int] = set()
    current = customer_id
    while True:
        merged_into = _RAW_MERGED_INTO.all(conn, {"id": current})
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
    wanted = list(dict.fromkeys(customer_ids))
    conn = _connection(session)
    if len(wanted) == 1:
        return {wanted[0]: resolve_id(conn, wanted[0])}
    rows: dict[int, tuple[int | None, dt.datetime | None]] = {}
    for part in chunks([cid for cid in wanted if valid_id(cid)]):
        rows.update((cid, (into, at)) for cid, into, at in
                    conn.execute(_SELECT_MANY_MERGED_INTO, {"ids": part}))
    resolved: dict[int, int] = {}
    for cid in wanted:
        found = rows.get(cid)
        if found is None:
            raise NotFound(f"no customer {cid}")
        into, at = found
        if at is not None:
            raise erased(cid, at)
        resolved[cid] = cid if into is None else resolve_id(conn, cid)
    return resolved


def erased(customer_id: int, at: dt.datetime) -> NotFound:
    """The error naming an erased customer (every command naming them exits 1 with it)."""
    return NotFound(f"customer {customer_id} was erased on {at.date().isoformat()}")


def load_customer(session: Session | Connection, customer_id: int) -> Customer:
    """The customer, or the survivor it was merged into; NotFound if there is none."""
    if not valid_id(customer_id):
        raise NotFound(f"no customer {customer_id}")
    conn = _connection(session)
    rows = _RAW_ROW.all(conn, {"id": customer_id})
    if rows and rows[0][_ERASED_AT] is not None:
        raise erased(customer_id, rows[0][_ERASED_AT])
    if rows and rows[0][_MERGED_INTO] is None:
        # Not merged away (the common case): the row just read is the customer's.
        return _build(conn, rows, [customer_id])[customer_id]
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
    """The customer of ``_SELECT_BY_KEY``'s rows (the holder neither merged away nor
    erased), or None for none: the row comes with every identity and link of the
    customer (a row per identity and link pair, usually one), each kept once, in id
    order."""
    if not rows:
        return None
    width = len(_ROW_FIELDS)
    identities: dict[int, tuple[str, str]] = {}
    links: dict[int, ProjectLink] = {}
    for r in rows:
        if r[width] is not None and r[width] not in identities:
            identities[r[width]] = (r[width + 1], r[width + 2])
        if r[width + 3] is not None and r[width + 3] not in links:
            links[r[width + 3]] = trusted(ProjectLink, {
                "project": r[width + 4], "project_name": r[width + 5], "stage": r[width + 6],
                "owner_staff": r[width + 7], "source": r[width + 8],
                "first_seen_at": r[width + 9]})
    ordered = [identities[i] for i in sorted(identities)]
    cards = [display for kind, display in ordered if kind == ID_CARD]
    return _model_of(
        rows[0][:width],
        [display for kind, display in ordered if kind == MOBILE],
        decrypt_card(cards[0]) if cards else None,
        [display for kind, display in ordered if kind == WECHAT],
        [links[i] for i in sorted(links)],
    )


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
        from . import bulkcopy  # the import's module; a single add needs it only here

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


def link_project(
    uow: UnitOfWork,
    customer_id: int,
    code: str,
    source: str | None,
    owner_staff: str | None,
    now: dt.datetime,
) -> tuple[bool, OwnerChange | None]:
    """Link a customer to a project (prospect); fill source/owner when empty.
    Returns whether anything changed, and the owner change if the owner did."""
    session = uow.session
    pid = project_id_in(uow, code)
    link = session.scalar(
        select(CustomerProjectRow).where(
            CustomerProjectRow.customer_id == customer_id, CustomerProjectRow.project_id == pid
        )
    )
    if link is None:
        session.add(
            CustomerProjectRow(
                customer_id=customer_id,
                project_id=pid,
                stage="prospect",
                owner_staff=owner_staff,
                source=source,
                first_seen_at=now,
                stage_changed_at=now,
            )
        )
        return True, _owner_change(customer_id, code, None, owner_staff, "first_link")
    changed = False
    owner_change = None
    if link.owner_staff is None and owner_staff:
        link.owner_staff, changed = owner_staff, True
        owner_change = _owner_change(customer_id, code, None, owner_staff, "filled")
    if link.source is None and source:
        link.source, changed = source, True
    return changed, owner_change


def _project_codes(session: Session, project_ids: set[int]) -> dict[int, str]:
    """Project id -> code for ``project_ids`` (the few projects an operation touched)."""
    return {pid: code for pid, code in session.execute(
        select(ProjectRow.id, ProjectRow.code).where(ProjectRow.id.in_(project_ids)))}


def _owner_change(
    customer_id: int, project: str, old: str | None, new: str | None, reason: str
) -> OwnerChange | None:
    if old == new:
        return None
    return trusted(OwnerChange, {"customer_id": customer_id, "project": project,
                                 "old_owner": old, "new_owner": new, "reason": reason})


def _identity_changes(
    before: Customer, added: Sequence[Key], id_card: str | None
) -> dict[str, tuple[Any, Any]]:
    """The ``changes`` entries (as the update hook gets them) for identities added to
    the customer ``before`` was (``id_card``: the number in clear, as the hook shows
    it; the key holds its hash)."""
    changes: dict[str, tuple[Any, Any]] = {}
    mobiles = [value for kind, value in added if kind == MOBILE]
    if mobiles:
        changes["mobiles"] = (before.mobiles, before.mobiles + mobiles)
    if any(kind == ID_CARD for kind, _ in added):
        changes["id_card"] = (None, id_card)
    unionids = [value for kind, value in added if kind == WECHAT]
    if unionids:
        changes["wechat_unionids"] = (before.wechat_unionids, before.wechat_unionids + unionids)
    return changes


def email_twins(session: Session | Connection, customer_id: int, email: str | None) -> list[int]:
    if not email:
        return []
    return list(
        session.scalars(
            select(CustomerRow.id).where(
                CustomerRow.email == email,
                CustomerRow.id != customer_id,
                CustomerRow.merged_into.is_(None),
            )
        )
    )


def recompute_stage(session: Session, customer_id: int) -> str:
    stages = session.scalars(
        select(CustomerProjectRow.stage).where(CustomerProjectRow.customer_id == customer_id)
    ).all()
    best = max(stages, key=lambda s: STAGE_RANK[s], default="prospect")
    session.execute(update(CustomerRow).where(CustomerRow.id == customer_id).values(stage=best))
    return best


_STAGE_OF_RANK = {rank: stage for stage, rank in STAGE_RANK.items()}
# FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers): two
# simultaneous moves of one link must not both record a contract.
_RAW_LINK_STAGE = RawSelect(
    select(_LT.c.id, _LT.c.stage)
    .where(_LT.c.customer_id == bindparam("cid"), _LT.c.project_id == bindparam("pid"))
    .with_for_update()
)
# The per-operation writes run on the driver's cursor (RawWrite).
_MOVE_LINK = RawWrite(
    update(_LT).where(_LT.c.id == bindparam("b_id"))
    .values(stage=bindparam("b_stage"), stage_changed_at=bindparam("b_at"))
)
_INSERT_LINK = RawWrite(insert(_LT))
_INSERT_CUSTOMER = RawWrite(insert(_CT).returning(_CT.c.id))
_INSERT_IDENTITY = RawWrite(insert(_IT))
_PROJECT_NAME = select(_PT.c.name).where(_PT.c.id == _ONE)
_TOUCH_CUSTOMER = RawWrite(update(_CT).where(_CT.c.id == bindparam("b_id")).values(
    updated_at=bindparam("b_at")))
_RECOMPUTE_STAGE = RawWrite(
    update(_CT)
    .where(_CT.c.id == bindparam("b_cid"))
    .values(
        stage=func.coalesce(
            case(
                _STAGE_OF_RANK,
                value=select(func.max(case(STAGE_RANK, value=_LT.c.stage)))
                .where(_LT.c.customer_id == bindparam("b_cid"))
                .scalar_subquery(),
            ),
            "prospect",
        ),
        updated_at=bindparam("b_updated_at"),
    )
)


@dataclass(frozen=True, slots=True)
class _Move:
    """A stage move whose arguments passed the checks every move gets."""

    customer_id: int
    stage: str
    project: str
    unit: str | None
    amount: int | None
    force: bool
    occurred_at: dt.datetime | None
    staff: str | None


def _checked_move(
    customer_id: int, stage: str, project: str, unit: str | None, amount: int | None,
    force: bool, occurred_at: dt.datetime | None, staff: str | None,
) -> _Move:
    """The move with its stage parsed and its project code as stored, or InvalidInput
    (the one check of ``set_stage``, ``set_stage_in`` and the batch forms)."""
    try:
        new_stage = parse_stage(stage)
    except ValueError as exc:
        raise InvalidInput("stage", str(exc)) from None
    if amount is not None and amount < 0:
        raise InvalidInput("amount", "amount cannot be negative")
    code = project_code(project)
    try:
        zoned(occurred_at, "occurred_at")
    except ValueError as exc:
        raise InvalidInput("occurred_at", str(exc)) from None
    return _Move(customer_id, new_stage, code, unit, amount, force, occurred_at, staff)


def _checked_moves(moves: Iterable[StageMove | Mapping[str, Any]]) -> list[_Move]:
    """``set_stages``' moves validated and checked; InvalidInput names the move by its
    position (``moves[2].stage``)."""
    checked: list[_Move] = []
    for n, raw in enumerate(moves):
        try:
            if isinstance(raw, StageMove):
                move = raw
            elif isinstance(raw, Mapping):
                move = StageMove.model_validate(dict(raw))
            else:
                raise InvalidInput("", "a move is a StageMove or a mapping of its fields")
            checked.append(_checked_move(move.customer_id, move.stage, move.project, move.unit,
                                         move.amount, move.force, move.occurred_at,
                                         move.staff))
        except ValidationError as exc:
            field, reason = first_error(exc)
            raise InvalidInput(f"moves[{n}].{field}", reason) from None
        except InvalidInput as exc:
            where = f"moves[{n}].{exc.field}" if exc.field else f"moves[{n}]"
            raise InvalidInput(where, exc.reason) from None
    return checked


# -- the service --------------------------------------------------------------------------


def _refuse_merged(survivor_id: int, sid: int, duplicate_id: int, did: int) -> None:
    """Refuse a merge of two ids that already resolve to one customer."""
    if sid != did:
        return
    if survivor_id == duplicate_id:
        raise Refused(f"cannot merge customer {survivor_id} into itself")
    merged, into = (duplicate_id, did) if duplicate_id != did else (survivor_id, sid)
    raise Refused(f"customer {merged} is already merged into {into}")


class CustomerService:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # add / update -----------------------------------------------------------------------
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

    def _retrying(self, actor: Actor | None, work: Callable[[UnitOfWork], _T]) -> _T:
        """Run ``work`` in a unit of work, again from scratch when a concurrent writer
        won (a UNIQUE constraint refused a key it took between our read and our
        write, a deadlock, rows that moved under our lock): the decision must be made
        again against what it wrote."""

        def attempt() -> _T:
            with self.crm.unit_of_work(actor) as uow:
                return work(uow)

        return retrying(attempt)

    def _add(self, uow: UnitOfWork, record: CustomerIn) -> AddResult:
        self.crm.directory.check(uow, [record.owner_staff])
        keys = record_keys(record, self._id_card_key)
        owners = owners_of_keys(uow.connection, keys)
        match = match_record(
            record, owners.get, lambda cid: id_cards_of(uow.connection, [cid]).get(cid), keys
        )
        if match.conflict:
            raise IdentityConflict(match.conflict, sorted(set(owners.values())),
                                   conflict_field(record))
        now = utcnow()
        if match.customer_id is None:
            customer, owner_change = self._create(uow, record, keys, now)
            twins = email_twins(uow.connection, customer.id, record.email)
            self.crm.hooks.customer_created(uow, customer)
            self.crm.hooks.owners_changed(uow, [owner_change] if owner_change else [])
            return AddResult(customer=customer, created=True, changed=True,
                             suspected_duplicate_of=twins)

        cid = match.customer_id
        session = uow.session
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
        conn = uow.connection
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
                "project": code, "project_name": conn.execute(_PROJECT_NAME, {"id": pid})
                .scalar_one(), "stage": "prospect", "owner_staff": record.owner_staff,
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

    def _id_card_key(self, number: str) -> str:
        return match_value(self.crm.keys, number)

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
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            cid = resolve_id(session, customer_id)
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

    # reading ------------------------------------------------------------------------------
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

    # stages -------------------------------------------------------------------------------
    def set_stage(
        self,
        customer_id: int,
        stage: str,
        project: str,
        *,
        unit: str | None = None,
        amount: int | None = None,
        force: bool = False,
        occurred_at: dt.datetime | None = None,
        staff: str | None = None,
        actor: Actor | None = None,
    ) -> Customer:
        """Move the customer's stage at ``project``: forward only unless ``force``.

        A change to subscriber/buyer/owner records a subscription/contract/handover
        interaction carrying ``unit`` and ``amount``, by ``staff`` (default: the
        actor). Setting the current stage again changes nothing and fires nothing.
        """
        check_writer(actor)
        move = _checked_move(customer_id, stage, project, unit, amount, force, occurred_at,
                             staff)
        return self._retrying(actor, lambda uow: self._set_stages(uow, [move]))[0]

    def set_stage_in(
        self,
        uow: UnitOfWork,
        customer_id: int,
        stage: str,
        project: str,
        *,
        unit: str | None = None,
        amount: int | None = None,
        force: bool = False,
        occurred_at: dt.datetime | None = None,
        staff: str | None = None,
    ) -> Customer:
        """``set_stage`` inside an existing unit of work (its actor acts), for plugins
        and bulk jobs that move many stages in one transaction."""
        move = _checked_move(customer_id, stage, project, unit, amount, force, occurred_at,
                             staff)
        return self._set_stages(uow, [move])[0]

    def set_stages(
        self, moves: Iterable[StageMove | Mapping[str, Any]], actor: Actor | None = None
    ) -> list[Customer]:
        """Many ``set_stage`` calls in one unit of work, in order (a customer moved
        twice is moved twice): the same rows, results and ``recrm_stage_changed``
        calls as one call per move, the batch hooks called once for all of them
        (inside ``crm.hooks.batched``) and ``recrm_owners_changed`` once with every
        owner change. Returns each move's customer, in the moves' order. A move the
        state refuses (a backward move without ``force``) rolls back all of them."""
        check_writer(actor)
        checked = _checked_moves(moves)
        return self._retrying(actor, lambda uow: self._set_stages(uow, checked))

    def set_stages_in(
        self, uow: UnitOfWork, moves: Iterable[StageMove | Mapping[str, Any]]
    ) -> list[Customer]:
        """``set_stages`` inside an existing unit of work (its actor acts)."""
        return self._set_stages(uow, _checked_moves(moves))

    def _set_stages(self, uow: UnitOfWork, moves: Sequence[_Move]) -> list[Customer]:
        """Every move in order inside one ``hooks.batched`` block; then the owner
        changes, once for the operation."""
        # The staff moves name, once for all (as ``interactions.log`` checks its staff).
        self.crm.directory.check(uow, {move.staff for move in moves if move.staff})
        moved: list[Customer] = []
        owner_changes: list[OwnerChange] = []
        with self.crm.hooks.batched(uow):
            for move in moves:
                customer, owner_change = self._set_stage(uow, move)
                moved.append(customer)
                if owner_change is not None:
                    owner_changes.append(owner_change)
        self.crm.hooks.owners_changed(uow, owner_changes)
        return moved

    def _set_stage(self, uow: UnitOfWork, move: _Move) -> tuple[Customer, OwnerChange | None]:
        """One move: the customer after it, and the owner change it made, if any."""
        conn = uow.connection
        cid = resolve_id(conn, move.customer_id)
        new_stage, code, unit, amount = move.stage, move.project, move.unit, move.amount
        now = move.occurred_at or utcnow()
        pid = project_id_in(uow, code)
        found = _RAW_LINK_STAGE.all(conn, {"cid": cid, "pid": pid})
        old_stage: str | None = found[0][1] if found else None
        behind = old_stage is not None and STAGE_RANK[new_stage] <= STAGE_RANK[old_stage] \
            and not (move.force and new_stage != old_stage)
        if behind and unit and new_stage in STAGE_INTERACTIONS:
            # Another unit at a stage the customer already reached (an investor signing
            # for a second flat): the step is recorded for that unit, the stage stays.
            return self._record_unit_step(uow, cid, pid, cast(str, old_stage), move,
                                          now), None
        if old_stage == new_stage:
            return load_customers(conn, [cid])[cid], None
        if behind:
            raise Refused(
                f"customer {cid} is {old_stage} at {code}; moving back to {new_stage}"
                " needs --force"
            )
        owner_change = None
        if found:
            _MOVE_LINK.run(conn, {"b_id": found[0][0], "b_stage": new_stage, "b_at": now})
        else:
            # A consultant moving a customer they are not linked to yet takes them on;
            # a manager's or an admin's step makes nobody the owner.
            owner = uow.actor.staff_id if uow.actor and uow.actor.role == "sales" else None
            _INSERT_LINK.run(
                conn,
                {"customer_id": cid, "project_id": pid, "stage": new_stage,
                 "first_seen_at": now, "stage_changed_at": now, "owner_staff": owner},
            )
            owner_change = _owner_change(cid, code, None, owner, "first_link")
        # One statement: the overall stage recomputed over every link (so forced
        # backward moves are right too) and the customer marked updated.
        _RECOMPUTE_STAGE.run(conn, {"b_cid": cid, "b_updated_at": utcnow()})
        interaction = None
        if new_stage in STAGE_INTERACTIONS:
            interaction = self._record_step(uow, cid, pid, new_stage, move, now)
        customer = load_customers(uow.connection, [cid])[cid]
        change = StageChange(
            customer_id=cid, project=code, old_stage=old_stage,
            new_stage=new_stage, step=new_stage,
            unit=unit, amount=amount, forced=move.force,
            interaction_id=interaction.id if interaction else None,
            occurred_at=now,
        )
        self.crm.hooks.stage_changed(uow, customer, change)
        return customer, owner_change

    def _record_step(
        self, uow: UnitOfWork, cid: int, pid: int, step: str, move: _Move, now: dt.datetime,
    ) -> Interaction:
        """The subscription/contract/handover interaction a step records."""
        code, unit, amount = move.project, move.unit, move.amount
        data: dict[str, Any] = {"stage": step}
        if unit:
            data["unit"] = unit
        if amount is not None:
            data["amount"] = amount
        return self.crm.interactions.append_in(
            uow, cid, kind=STAGE_INTERACTIONS[step], project=code, project_id=pid,
            staff=move.staff or (uow.actor.staff_id if uow.actor else None),
            occurred_at=now, data=data,
            summary=f"{STAGE_INTERACTIONS[step]} at {code}" + (f", unit {unit}" if unit else ""),
        )

    def _record_unit_step(
        self, uow: UnitOfWork, cid: int, pid: int, stage: str, move: _Move, now: dt.datetime,
    ) -> Customer:
        """A step (``move.stage``) for ``move.unit`` at or behind the customer's
        ``stage`` at the project: its interaction and a ``recrm_stage_changed`` with
        ``old_stage == new_stage``, once per unit and step (the link row is locked, so
        two at once record one)."""
        conn = uow.connection
        step, unit = move.stage, move.unit
        kind = STAGE_INTERACTIONS[step]
        recorded = conn.scalars(
            select(InteractionRow.data).where(
                InteractionRow.customer_id == cid, InteractionRow.project_id == pid,
                InteractionRow.kind == kind,
            )
        )
        if any((data or {}).get("unit") == unit for data in recorded):
            return load_customers(conn, [cid])[cid]
        interaction = self._record_step(uow, cid, pid, step, move, now)
        _TOUCH_CUSTOMER.run(conn, {"b_id": cid, "b_at": utcnow()})
        customer = load_customers(conn, [cid])[cid]
        change = StageChange(
            customer_id=cid, project=move.project, old_stage=stage, new_stage=stage,
            step=step, unit=unit, amount=move.amount, forced=False,
            interaction_id=interaction.id, occurred_at=now,
        )
        self.crm.hooks.stage_changed(uow, customer, change)
        return customer

    # merge / reassign -------------------------------------------------------------------
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
        returns how many links moved."""
        check_writer(actor)
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

    def stages(self) -> tuple[str, ...]:
        return STAGES


def interaction_entry(i: Interaction) -> TimelineEntry:
    title = i.summary or i.kind
    return TimelineEntry(
        at=i.occurred_at, kind=i.kind, title=title, source="core",
        data={"id": i.id, "project": i.project, "staff": i.staff, "channel": i.channel, **i.data},
    )


