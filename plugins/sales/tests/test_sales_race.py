"""Several processes at once: holding the same units leaves exactly one hold per unit
(the unit's row lock, the expiry under it and the partial unique index
``uq_sales_holds_active``), and issuing tickets at one project gives gapless, unique
numbers (the sequence row's lock), and signing deals with one contract number signs
one (the unique index ``uq_sales_deals_contract``). Each writer is its own spawned
process with its own CRM, like consultants at several desks on opening day."""

from __future__ import annotations

from pathlib import Path

import pytest
from recrm_sales import service
from recrm_sales.tables import HoldRow, TicketRow
from sales_testkit import PROJECT, customer, setup_units
from sqlalchemy import func, select

from recrm_core import CRM, Refused
from recrm_core.testing import StartLine, run_together

pytestmark = pytest.mark.recrm_plugins("sales")

UNITS = ["XL2/3-1201", "XL2/3-1202", "XL2/3-1203"]
WRITERS = 4
TICKETS_EACH = 6


def _holder(url: str, cid: int, units: list[str], start: StartLine) -> list[str]:
    outcomes: list[str] = []
    with CRM(database_url=url, plugins=["sales"]) as crm:
        sales = service(crm)
        start.wait()
        for unit in units:
            try:
                sales.units.hold(unit, cid)
                outcomes.append("held")
            except Refused:
                outcomes.append("refused")
    return outcomes


def _issuer(url: str, cid: int, start: StartLine) -> list[str]:
    with CRM(database_url=url, plugins=["sales"]) as crm:
        sales = service(crm)
        start.wait()
        numbers = [sales.tickets.issue(PROJECT, cid, "20000").number
                   for _ in range(TICKETS_EACH)]
    return numbers


def _signer(url: str, deal: int, start: StartLine) -> tuple[int, str]:
    with CRM(database_url=url, plugins=["sales"]) as crm:
        sales = service(crm)
        sales.deals.show(deal)  # warm up: connections, compiled statements
        start.wait()
        try:
            sales.deals.sign(deal, contract_no="HT-2026-001", total="1900000",
                             payment="mortgage")
            outcome = "signed"
        except Refused as exc:
            outcome = f"refused: {exc}"
    return (deal, outcome)


def test_processes_signing_one_contract_number_sign_one_deal(
        crm: CRM, recrm_database_url: str, tmp_path: Path) -> None:
    """Two offices typing the same contract number for different deals at once: one
    deal is signed with it, the others are refused naming that deal (before the
    unique index on the project and number both checks passed on PostgreSQL and two
    deals held one contract)."""
    sales = setup_units(crm, tmp_path)
    deals = [sales.deals.subscribe(unit, customer(crm, f"1390000000{i}"), deposit=50000).id
             for i, unit in enumerate(UNITS)]
    results = dict(run_together(_signer, [(recrm_database_url, d) for d in deals]))
    [winner] = [d for d, outcome in results.items() if outcome == "signed"]
    assert all(outcome == f"refused: contract HT-2026-001 is deal {winner}'s"
               for d, outcome in results.items() if d != winner), results
    assert [(d.id, d.state) for d in sales.deals.list() if d.contract_no is not None] == [
        (winner, "contracted")]


def test_processes_holding_the_same_units_leave_one_hold_each(
        crm: CRM, recrm_database_url: str, tmp_path: Path) -> None:
    setup_units(crm, tmp_path)
    ids = [customer(crm, f"1390000000{i}") for i in range(WRITERS)]
    orders = [UNITS[i % 3:] + UNITS[:i % 3] for i in range(WRITERS)]
    results = run_together(_holder, [(recrm_database_url, cid, order)
                             for cid, order in zip(ids, orders, strict=True)])
    outcomes = [o for values in results for o in values]
    assert outcomes.count("held") == len(UNITS)
    assert outcomes.count("refused") == len(UNITS) * (WRITERS - 1)
    with crm.unit_of_work() as uow:
        active: dict[int, int] = dict(uow.session.execute(
            select(HoldRow.unit_id, func.count()).where(HoldRow.state == "active")
            .group_by(HoldRow.unit_id)).all())
    assert sorted(active.values()) == [1] * len(UNITS)
    assert {u.status for u in service(crm).units.list(building="3")} == {"held"}


def test_processes_issuing_tickets_get_gapless_unique_numbers(
        crm: CRM, recrm_database_url: str, tmp_path: Path) -> None:
    setup_units(crm, tmp_path)
    cid = customer(crm, "13900000001")
    results = run_together(_issuer, [(recrm_database_url, cid) for _ in range(WRITERS)])
    numbers = sorted(n for values in results for n in values)
    assert numbers == list(range(1, WRITERS * TICKETS_EACH + 1))
    with crm.unit_of_work() as uow:
        stored = sorted(uow.session.scalars(select(TicketRow.number)))
    assert stored == numbers
