"""``recrm channel report`` and the money commands on both backends: the report's
figures (SQL aggregates) match the ledger and the registrations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import RegistrationRefused, service
from recrm_channels.commission import Commissions
from recrm_channels.report import report

from recrm_core import CRM, Actor, Forbidden
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("channels")


def ok(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    return result.json() if result.stdout else None


def _scenario(crm: CRM) -> None:
    channels = setup_agencies(crm)
    crm.projects.ensure("XL3", "Xinglong Phase III")
    money = Commissions(crm)
    money.set_terms("A", PROJECT, percent="2", visit_reward="100", subscription_reward="300")
    money.set_terms("B", PROJECT, fixed="20000")
    # A: three registrations; two visit, one subscribes then signs, one signs and cancels
    for mobile in ("13800000001", "13800000002", "13800000003"):
        channels.register("a1", PROJECT, mobile)
    with pytest.raises(RegistrationRefused):
        channels.register("b1", PROJECT, "13800000001")  # already registered
    channels.register("b1", PROJECT, "13800000009")
    channels.register("b1", "XL3", "13800000001")
    for mobile in ("13800000001", "13800000002", "13800000009"):
        channels.visit(PROJECT, mobile)
    one, two, nine = (crm.customers.find(mobile=m)[0].id
                      for m in ("13800000001", "13800000002", "13800000009"))
    crm.customers.set_stage(one, "subscriber", PROJECT, unit="1-101", amount=20_000)
    crm.customers.set_stage(one, "buyer", PROJECT, unit="1-101", amount=2_000_000)
    crm.customers.set_stage(two, "buyer", PROJECT, unit="1-102", amount=1_500_000)
    crm.customers.set_stage(two, "visitor", PROJECT, force=True)
    crm.customers.set_stage(nine, "buyer", PROJECT, unit="1-109", amount=900_000)


def test_report_figures_match_the_ledger(crm: CRM) -> None:
    _scenario(crm)
    rows = {(r.agency, r.project): r for r in report(crm)}
    assert sorted(rows) == [("A", PROJECT), ("B", PROJECT), ("B", "XL3")]
    a, b = rows["A", PROJECT], rows["B", PROJECT]
    assert (a.registrations, a.rejected, a.confirmed, a.subscribed, a.contracted) == (
        3, {}, 2, 1, 1)
    assert (b.registrations, b.rejected, b.confirmed, b.contracted) == (
        2, {"already registered": 1}, 1, 1)
    assert rows["B", "XL3"].registrations == 1
    # against the ledger, entry by entry
    entries = Commissions(crm).entries()
    for r in rows.values():
        mine = [e for e in entries if (e.agency, e.project) == (r.agency, r.project)]
        assert r.accrued == sum((e.amount for e in mine
                                 if e.kind in ("visit", "subscription", "deal")), Decimal(0))
        assert r.clawed_back == -sum((e.amount for e in mine if e.kind == "clawback"),
                                     Decimal(0))
    assert (a.accrued, a.clawed_back, a.deal_amount) == (
        Decimal("100.00") * 2 + Decimal("300.00") + Decimal("40000.00") + Decimal("30000.00"),
        Decimal("30000.00"), Decimal("2000000.00"))
    assert (b.accrued, b.clawed_back, b.deal_amount) == (
        Decimal("20000.00"), Decimal("0.00"), Decimal("900000.00"))
    only = report(crm, project="XL3")
    assert [(r.agency, r.registrations, r.accrued) for r in only] == [("B", 1, Decimal("0.00"))]
    with pytest.raises(Forbidden):
        report(crm, actor=Actor(staff_id="a1", role="partner"))


def test_money_commands_on_the_command_line(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    _scenario(crm)
    run = cli_runner.invoke
    terms = ok(run("channel", "terms", "set", "--agency", "B", "--project", "XL3",
                   "--percent", "1.25", "--visit-reward", "50", "--json"))
    assert (terms["percent"], terms["visit_reward"]) == ("1.2500", "50.00")
    shown = ok(run("channel", "terms", "show", "--json"))
    assert [(t["agency"], t["project"]) for t in shown] == [
        ("A", PROJECT), ("B", PROJECT), ("B", "XL3")]
    bad = run("channel", "terms", "set", "--agency", "B", "--project", "XL3")
    assert bad.exit_code == 2
    ledger = ok(run("channel", "commissions", "--agency", "B", "--json"))
    assert [(e["kind"], e["amount"]) for e in ledger] == [("deal", "20000.00")]
    rows = ok(run("channel", "report", "--project", PROJECT, "--from", "2020-01-01",
                  "--to", "2999-12-31", "--json"))
    assert [(r["agency"], r["accrued"]) for r in rows] == [("A", "70500.00"),
                                                           ("B", "20000.00")]
    assert ok(run("channel", "report", "--to", "2020-01-01", "--json")) == []
    human = run("channel", "report")
    assert human.exit_code == 0 and "already registered 1" in human.stdout
    assert run("channel", "report", "--from", "soon").exit_code == 2
    service(crm)  # the plugin's service still answers after the commands
