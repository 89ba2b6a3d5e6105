"""Contracts a customer holds (a tier counts them), and calendar months."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from recrm_core import (
    Customer,
    UnitOfWork,
)
from recrm_core.tables import InteractionRow, ProjectRow

from .rules import SIGNED, _chunks


def add_months(at: dt.datetime, months: int, zone: ZoneInfo) -> dt.datetime:
    """``at`` plus calendar months in the business time zone (31 Jan + 1 = 28/29 Feb)."""
    local = at.astimezone(zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(dt.UTC)


def contracts_of(uow: UnitOfWork, customer: Customer, upto: int | None = None) -> int:
    """Contracts the customer holds: one per unit at each project where the customer
    is buyer or owner (an investor's second flat at the same project counts again; a
    signed project whose contract named no unit counts once; a project moved back
    before signing counts none).

    ``upto``: count only interactions up to this id, those logged by the stage change
    being answered. A batch of stage changes is answered after all of them, when
    the customer's later contracts are already there."""
    units = contract_units(uow.session, [customer.id]).get(customer.id, [])
    return count_contracts(customer, units, upto)


#: one contract or handover of a customer: (interaction id, project code, unit or "")
ContractUnit = tuple[int, str, str]


def count_contracts(customer: Customer, units: Iterable[ContractUnit],
                    upto: int | None = None) -> int:
    """:func:`contracts_of` with the customer's contracts and handovers read (by
    :func:`contract_units`)."""
    by_project: dict[str, set[str]] = {}
    for interaction_id, project, unit in units:
        if upto is None or interaction_id <= upto:
            by_project.setdefault(project, set()).add(unit)
    return sum(max(1, len(by_project.get(link.project, set()) - {""}))
               for link in customer.projects if link.stage in SIGNED)


def contract_units(session: Session,
                   customer_ids: Iterable[int]) -> dict[int, list[ContractUnit]]:
    """The contracts and handovers (with a project) of ``customer_ids``, by customer:
    one statement per 500 customers.

    Read from the core's table rather than through ``interactions.list_in`` (one
    customer a call, every column, a model each): a batch of stage changes counts
    the contracts of all of its members at once (list_in per change was 13% of the
    demo's stage seeding)."""
    found: dict[int, list[ContractUnit]] = defaultdict(list)
    for chunk in _chunks(sorted(set(customer_ids)), 500):
        for cid, interaction_id, code, data in session.execute(_CONTRACT_UNITS,
                                                               {"ids": list(chunk)}):
            unit = data.get("unit") if isinstance(data, dict) else None
            found[int(cid)].append((int(interaction_id), str(code), str(unit or "")))
    return found


_CONTRACT_UNITS = (
    select(InteractionRow.customer_id, InteractionRow.id, ProjectRow.code,
           InteractionRow.data)
    .join(ProjectRow, ProjectRow.id == InteractionRow.project_id)
    .where(InteractionRow.customer_id.in_(bindparam("ids", expanding=True)),
           InteractionRow.kind.in_(("contract", "handover")))
)
