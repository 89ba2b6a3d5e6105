"""``sales.deals``, the plugin's registered report (``recrm_reports``): deals,
receipts and receivables per project and period against hand-computed figures; the
deal amount and receivables of ``recrm sales report`` (one computation); its role
rule; registered only when the plugin is enabled.

(Named ``test_sales_reports.py``: every test directory shares one namespace.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from recrm_sales.report import report
from sales_testkit import NOW, PROJECT, customer, setup_units

from recrm_core import CRM, Actor, Forbidden, InvalidInput, NotFound
from recrm_core.reports import ReportRequest
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("sales")

KEYS = ("project", "period", "deals", "contracted", "deal_amount", "received",
        "receivables_due", "receivables_overdue")
APRIL = dt.datetime(2026, 4, 15, 2, tzinfo=dt.UTC)


@pytest.fixture
def deals(crm: CRM, tmp_path: Path) -> None:
    """Wang subscribes 3-1201 on 2 March 2026 (deposit 50,000), signs for 1,970,000 in
    instalments (deposit 03-02, down payment 541,000 on 03-11, three instalments of
    459,666.67 / .67 / .66 on 04-04, 05-04, 06-04) and pays 41,000 on 03-10. Li
    subscribes 3-1202 (3,000,000) on 15 April with 100,000 down, unsigned. Zhao's
    deal on 3-1203 is cancelled: it counts nowhere. Every schedule line is overdue by
    the time the test runs (after June 2026)."""
    sales = setup_units(crm, tmp_path)
    wang, li, zhao = (customer(crm, f"1380000000{i}") for i in (1, 2, 3))
    first = sales.deals.subscribe("XL2/3-1201", wang, deposit="50000", now=NOW)
    sales.deals.sign(first.id, contract_no="HT-9", total="1970000", payment="instalments",
                     now=NOW + dt.timedelta(days=2))
    sales.payments.schedule(first.id, "instalments:3", now=NOW)
    sales.payments.receive(first.id, "41000", date=dt.date(2026, 3, 10), ref="BANK-2")
    sales.deals.subscribe("XL2/3-1202", li, deposit="100000", now=APRIL)
    gone = sales.deals.subscribe("XL2/3-1203", zhao, deposit="20000", now=APRIL)
    sales.deals.cancel(gone.id, reason="退房", now=APRIL + dt.timedelta(days=1))


def rows(crm: CRM, **request: Any) -> list[tuple[Any, ...]]:
    report_ = crm.reports.run("sales.deals", ReportRequest(**request))
    assert [c.key for c in report_.columns] == list(KEYS)
    return [tuple(row[k] for k in KEYS) for row in report_.rows]


def money(text: str) -> float:
    # a report's money cells are floats on both backends (aggregates for reading)
    return float(Decimal(text))


def test_hand_computed_figures(crm: CRM, deals: None) -> None:
    # 1,970,000 + 3,000,000; received 50,000 + 41,000 + 100,000; Wang owes
    # 1,970,000 - 91,000 = 1,879,000, all of it overdue
    assert rows(crm) == [(PROJECT, "all", 2, 1, money("4970000.00"), money("191000.00"),
                          money("0.00"), money("1879000.00"))]
    # by month: the down payment (541,000 - 41,000) is overdue in March, an
    # instalment each in April, May and June
    assert rows(crm, by="month") == [
        (PROJECT, "2026-03", 1, 1, money("1970000.00"), money("91000.00"), money("0.00"),
         money("500000.00")),
        (PROJECT, "2026-04", 1, 0, money("3000000.00"), money("100000.00"), money("0.00"),
         money("459666.67")),
        (PROJECT, "2026-05", 0, 0, money("0.00"), money("0.00"), money("0.00"),
         money("459666.67")),
        (PROJECT, "2026-06", 0, 0, money("0.00"), money("0.00"), money("0.00"),
         money("459666.66")),
    ]
    assert rows(crm, by="quarter", project=PROJECT, start=dt.date(2026, 4, 1),
                end=dt.date(2026, 5, 31)) == [
        (PROJECT, "2026-Q2", 1, 0, money("3000000.00"), money("100000.00"), money("0.00"),
         money("919333.34"))]
    # the last day is inclusive: the receipt of 10 March counts, the deal of 2 March
    assert rows(crm, end=dt.date(2026, 3, 10))[0][2:6] == (1, 1, money("1970000.00"),
                                                           money("91000.00"))
    assert rows(crm, start=dt.date(2026, 7, 1)) == []


def test_the_same_figures_as_sales_report(
        crm: CRM, deals: None, cli_runner: RecrmCliRunner) -> None:
    whole = report(crm, project=PROJECT)
    lines = crm.reports.run("sales.deals", ReportRequest()).rows
    assert whole.sold == sum(int(str(r["deals"])) for r in lines) == 2
    assert whole.deal_amount == sum(Decimal(str(r["deal_amount"])) for r in lines)
    assert whole.receivables_overdue == sum(Decimal(str(r["receivables_overdue"]))
                                            for r in lines) == money("1879000.00")
    assert whole.receivables_due == money("0.00")
    shown = cli_runner.invoke("sales", "report", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert (shown.json()["deal_amount"], shown.json()["receivables_overdue"]) == (
        "4970000.00", "1879000.00")


def test_role_rule_and_bad_requests(crm: CRM, deals: None) -> None:
    assert rows(crm, actor=Actor(staff_id="an", role="analyst"))[0][2] == 2
    with pytest.raises(Forbidden, match=r"may not run the report 'sales\.deals'"):
        rows(crm, actor=Actor(staff_id="p", role="partner"))
    with pytest.raises(NotFound, match="NOPE"):
        rows(crm, project="NOPE")
    with pytest.raises(InvalidInput, match="before it starts"):
        rows(crm, start=dt.date(2026, 5, 2), end=dt.date(2026, 5, 1))
    assert rows(crm, start=dt.date.min, end=dt.date.max)[0][2] == 2


def test_registered_only_when_the_plugin_is_enabled(
        crm: CRM, crm_factory: Callable[..., CRM]) -> None:
    spec = crm.reports.specs()["sales.deals"]
    assert (spec.plugin, spec.standard) == ("sales", ("project", "from", "to", "by"))
    assert "sales.deals" not in crm_factory(plugins=[]).reports.specs()
