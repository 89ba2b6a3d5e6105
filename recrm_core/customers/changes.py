"""What the customer service's writes share: validation, project links, owner and
identity changes, stage moves and their statements, the service's base."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..contention import retrying
from ..db import UnitOfWork
from ..errors import InvalidInput, Refused
from ..idcards import match_value
from ..models import (
    Actor,
    Customer,
    CustomerIn,
    Interaction,
    OwnerChange,
    StageMove,
    TimelineEntry,
    first_error,
    trusted,
)
from ..projects import project_code, project_id_in
from ..rawsql import RawSelect, RawWrite
from ..resolution import (
    ID_CARD,
    MOBILE,
    WECHAT,
    Key,
)
from ..tables import (
    CustomerProjectRow,
    CustomerRow,
    ProjectRow,
)
from ..values import STAGE_RANK, parse_amount, parse_stage, zoned
from .loading import (
    _CT,
    _IT,
    _LT,
    _ONE,
    _PT,
)

if TYPE_CHECKING:
    from ..crm import CRM


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
#: a move's first read, one statement for three (round trips on PostgreSQL): the
#: customer's merge and erasure, the project's id and the link's id and stage. The
#: customer row is locked as ``resolve_for_write`` locks it (FOR KEY SHARE OF
#: customers: set_stage writes for them, and a merge must wait); the link is not
#: (PostgreSQL locks no row on the nullable side of an outer join): a link found is
#: read again through ``_RAW_LINK_STAGE``.
_RAW_MOVE_START = RawSelect(
    select(_CT.c.merged_into, _CT.c.erased_at, _PT.c.id, _LT.c.id, _LT.c.stage)
    .select_from(
        _CT.outerjoin(_PT, _PT.c.code == bindparam("code"))
        .outerjoin(_LT, and_(_LT.c.customer_id == _CT.c.id, _LT.c.project_id == _PT.c.id))
    )
    .where(_CT.c.id == bindparam("cid"))
    .with_for_update(read=True, key_share=True, of=_CT)
)
# The per-operation writes run on the driver's cursor (RawWrite).
_MOVE_LINK = RawWrite(
    update(_LT).where(_LT.c.id == bindparam("b_id"))
    .values(stage=bindparam("b_stage"), stage_changed_at=bindparam("b_at"))
)
_INSERT_LINK = RawWrite(insert(_LT))
_INSERT_CUSTOMER = RawWrite(insert(_CT).returning(_CT.c.id))
_INSERT_IDENTITY = RawWrite(insert(_IT))
_PROJECT_NAME = RawSelect(select(_PT.c.name).where(_PT.c.id == _ONE))
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
    if amount is not None:
        try:  # the amounts' one rule (below 0 or 10^12 and over refused), as plugins apply it
            parse_amount(amount)
        except ValueError as exc:
            raise InvalidInput("amount", f"amount {exc}") from None
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


def interaction_entry(i: Interaction) -> TimelineEntry:
    title = i.summary or i.kind
    return TimelineEntry(
        at=i.occurred_at, kind=i.kind, title=title, source="core",
        data={"id": i.id, "project": i.project, "staff": i.staff, "channel": i.channel, **i.data},
    )


class _Service:
    """What every part of :class:`CustomerService` shares."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def _retrying(self, actor: Actor | None, work: Callable[[UnitOfWork], _T]) -> _T:
        """Run ``work`` in a unit of work, again from scratch when a concurrent writer
        won (a UNIQUE constraint refused a key it took between our read and our
        write, a deadlock, rows that moved under our lock): the decision must be made
        again against what it wrote."""

        def attempt() -> _T:
            with self.crm.unit_of_work(actor) as uow:
                return work(uow)

        return retrying(attempt)

    def _id_card_key(self, number: str) -> str:
        return match_value(self.crm.keys, number)
