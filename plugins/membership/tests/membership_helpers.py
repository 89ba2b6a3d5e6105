"""Shared helpers of the membership tests (a plain module: pytest collects only
``test_*.py``; the name is unique because every test directory shares one namespace)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from recrm_membership import LedgerRow, Membership, service
from sqlalchemy import select

from recrm_core import CRM, Customer

UTC = dt.UTC
T0 = dt.datetime(2023, 1, 15, 4, 0, tzinfo=UTC)


def customer(crm: CRM, mobile: str, **fields: Any) -> Customer:
    return crm.customers.add({"mobile": mobile, **fields}).customer


def owner(crm: CRM, mobile: str, project: str = "XL2", unit: str = "1-1-101",
          **fields: Any) -> Customer:
    """A customer who signed at ``project`` and had the unit handed over."""
    c = customer(crm, mobile, **fields)
    crm.customers.set_stage(c.id, "buyer", project, unit=unit, amount=3_000_000)
    return crm.customers.set_stage(c.id, "owner", project, unit=unit)


def sign(crm: CRM, customer_id: int, project: str, unit: str = "2-1-1801") -> Customer:
    return crm.customers.set_stage(customer_id, "buyer", project, unit=unit, amount=4_000_000)


def club(crm: CRM) -> Membership:
    return service(crm)


def ledger(crm: CRM) -> list[tuple[int, str, int, str | None]]:
    """Every ledger row: (customer, kind, points, award key)."""
    with crm.unit_of_work() as uow:
        rows = uow.session.scalars(select(LedgerRow).order_by(LedgerRow.id)).all()
        return [
            (r.customer_id, r.kind, r.points,
             None if r.event_kind is None else f"{r.event_kind}:{r.event_subject}:{r.event_ref}")
            for r in rows
        ]
