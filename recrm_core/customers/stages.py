"""Stage moves: forward only unless forced, the step interactions, the hooks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    select,
)

from ..access import check_writer
from ..db import UnitOfWork, utcnow, valid_id
from ..errors import Refused
from ..models import (
    Actor,
    Customer,
    Interaction,
    OwnerChange,
    StageChange,
    StageMove,
)
from ..projects import project_id_in
from ..tables import (
    InteractionRow,
)
from ..values import STAGE_RANK, STAGES
from .changes import (
    _INSERT_LINK,
    _MOVE_LINK,
    _RAW_LINK_STAGE,
    _RAW_MOVE_START,
    _RECOMPUTE_STAGE,
    _TOUCH_CUSTOMER,
    STAGE_INTERACTIONS,
    _checked_move,
    _checked_moves,
    _Move,
    _owner_change,
    _Service,
)
from .loading import (
    load_customers,
    resolve_for_write,
)

if TYPE_CHECKING:
    pass


class _Stages(_Service):
    """``set_stage`` and its batch forms."""

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
        uow.check_staff({move.staff for move in moves if move.staff})
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
        conn = uow.driver
        new_stage, code, unit, amount = move.stage, move.project, move.unit, move.amount
        now = move.occurred_at or utcnow()
        start = _RAW_MOVE_START.all(conn, {"cid": move.customer_id, "code": code}) \
            if valid_id(move.customer_id) else []
        if start and start[0][0] is None and start[0][1] is None and start[0][2] is not None:
            # The common case: the customer as named, the project known.
            cid, pid = move.customer_id, start[0][2]
            found = _RAW_LINK_STAGE.all(conn, {"cid": cid, "pid": pid}) \
                if start[0][3] is not None else []
        else:
            # Merged away, erased or unknown (the errors and the survivor
            # resolve_for_write gives), or the project new or unknown (project_id_in's
            # rule).
            cid = resolve_for_write(conn, move.customer_id)
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
        customer = load_customers(uow.driver, [cid])[cid]
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

    def stages(self) -> tuple[str, ...]:
        return STAGES
