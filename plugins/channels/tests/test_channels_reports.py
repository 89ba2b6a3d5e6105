"""``channels.commission``, the plugin's registered report (``recrm_reports``): the
figures of ``recrm channel report`` (one function), hand-computed, per agency,
project and period; its role rule; registered only when the plugin is enabled.

(Named ``test_channels_reports.py``: every test directory shares one namespace.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import RegistrationRefused
from recrm_channels.commission import Commissions

from recrm_core import CRM, Actor, Forbidden, InvalidInput, NotFound
from recrm_core.reports import ReportRequest
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("channels")

KEYS = ("agency", "project", "period", "registrations", "rejected", "confirmed",
        "subscribed", "contracted", "deal_amount", "accrued", "clawed_back")


@pytest.fixture
def agencies(crm: CRM) -> None:
    """A registers two customers (one visits, subscribes and signs for 2,000,000); B's
    first registration is refused (A has it), its second visits and signs for
    900,000. A earns 2% of deals, 100 a visit and 300 a subscription; B 20,000 a
    deal."""
    channels = setup_agencies(crm)
    money = Commissions(crm)
    money.set_terms("A", PROJECT, percent="2", visit_reward="100", subscription_reward="300")
    money.set_terms("B", PROJECT, fixed="20000")
    channels.register("a1", PROJECT, "13800000001")
    channels.register("a1", PROJECT, "13800000002")
    with pytest.raises(RegistrationRefused):
        channels.register("b1", PROJECT, "13800000001")
    channels.register("b1", PROJECT, "13800000009")
    channels.visit(PROJECT, "13800000001")
    channels.visit(PROJECT, "13800000009")
    one, nine = (crm.customers.find(mobile=m)[0].id for m in ("13800000001", "13800000009"))
    crm.customers.set_stage(one, "subscriber", PROJECT, unit="1-101", amount=20_000)
    crm.customers.set_stage(one, "buyer", PROJECT, unit="1-101", amount=2_000_000)
    crm.customers.set_stage(nine, "buyer", PROJECT, unit="1-109", amount=900_000)


def rows(crm: CRM, **request: Any) -> list[tuple[Any, ...]]:
    report = crm.reports.run("channels.commission", ReportRequest(**request))
    assert [c.key for c in report.columns] == list(KEYS)
    return [tuple(row[k] for k in KEYS) for row in report.rows]


def test_hand_computed_figures(crm: CRM, agencies: None) -> None:
    # A: 100 (visit) + 300 (subscription) + 2% of 2,000,000 = 40,400
    a = ("A", PROJECT, "all", 2, 0, 1, 1, 1, 2000000.0, 40400.0,
         0.0)
    b = ("B", PROJECT, "all", 2, 1, 1, 0, 1, 900000.0, 20000.0,
         0.0)
    assert rows(crm) == [a, b]
    report = crm.reports.run("channels.commission", ReportRequest())
    assert report.notes == ["refused: already registered 1"]
    assert report.chart is not None and report.chart.kind == "bar"
    # everything happened today (in the CRM's zone): one line per agency this month
    today = dt.datetime.now(crm.config.zone).date()
    utc_today = dt.datetime.now(dt.UTC)
    assert [r[:3] for r in rows(crm, by="month")] == [
        ("A", PROJECT, f"{utc_today:%Y-%m}"), ("B", PROJECT, f"{utc_today:%Y-%m}")]
    assert rows(crm, start=today, end=today, project=PROJECT) == [a, b]
    assert rows(crm, start=dt.date.min, end=dt.date.max) == [a, b]
    assert rows(crm, end=today - dt.timedelta(days=1)) == []
    assert rows(crm, start=today + dt.timedelta(days=1)) == []


def test_the_same_figures_as_channel_report(
        crm: CRM, agencies: None, cli_runner: RecrmCliRunner) -> None:
    shown = cli_runner.invoke("channel", "report", "--json")
    assert shown.exit_code == 0, shown.stderr
    registered = crm.reports.run("channels.commission", ReportRequest()).rows
    assert [(r["agency"], r["registrations"], sum(r["rejected"].values()), r["confirmed"],
             r["contracted"], r["deal_amount"], r["accrued"], r["clawed_back"])
            for r in shown.json()] == [
        (r["agency"], r["registrations"], r["rejected"], r["confirmed"], r["contracted"],
         f'{r["deal_amount"]:.2f}', f'{r["accrued"]:.2f}', f'{r["clawed_back"]:.2f}')
        for r in registered]
    by_month = cli_runner.invoke("channel", "report", "--by", "month", "--json")
    assert [r["period"] for r in by_month.json()] == [
        f"{dt.datetime.now(dt.UTC):%Y-%m}"] * 2
    assert cli_runner.invoke("channel", "report", "--by", "week").exit_code == 2


def test_role_rule_and_bad_requests(crm: CRM, agencies: None) -> None:
    assert rows(crm, actor=Actor(staff_id="ana", role="analyst"))[0][0] == "A"
    with pytest.raises(Forbidden, match=r"may not run the report 'channels\.commission'"):
        rows(crm, actor=Actor(staff_id="a1", role="partner"))
    with pytest.raises(NotFound, match="NOPE"):
        rows(crm, project="NOPE")
    with pytest.raises(InvalidInput, match=r"the period ends \(2025-05-01\) before it starts"):
        rows(crm, start=dt.date(2025, 5, 2), end=dt.date(2025, 5, 1))


def test_registered_only_when_the_plugin_is_enabled(
        crm: CRM, crm_factory: Callable[..., CRM]) -> None:
    spec = crm.reports.specs()["channels.commission"]
    assert (spec.plugin, spec.standard) == ("channels", ("project", "from", "to", "by"))
    assert "channels.commission" not in crm_factory(plugins=[]).reports.specs()
