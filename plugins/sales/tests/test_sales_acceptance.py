"""The acceptance review's defects: ids outside the core's range, floats and rounding
in money, the deposit paid at subscription, the 360 view after changes of buyer and
unit, overpayment, and error messages naming the real option."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sales_testkit import HEADER, NOW, PROJECT, ROWS, customer, setup_units
from test_sales_cli import ok, one_line

from recrm_core import CRM, InvalidInput, NotFound, Refused
from recrm_core.testing import ApiClients, RecrmCliRunner, problem_of

pytestmark = pytest.mark.recrm_plugins("sales")

HUGE = "99999999999999999999999"
ABOVE = str(2**31)  # the first id a PostgreSQL INTEGER cannot hold


def _cli(crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> RecrmCliRunner:
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    units = tmp_path / "units.csv"
    units.write_text(HEADER + ROWS, encoding="utf-8")
    ok(cli_runner.invoke("sales", "units", "import", str(units), "--project", PROJECT,
                         "--json"))
    return cli_runner


# -- 1. ids outside 1..2^31-1 name nothing ---------------------------------------------------
def test_unit_ids_out_of_range_are_no_unit_on_the_command_line(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    run = _cli(crm, cli_runner, tmp_path).invoke
    for ref in (HUGE, ABOVE, "0"):
        line = one_line(run("sales", "units", "hold", ref, "--customer", "13800000001"), 1)
        assert line.endswith(f"no unit '{ref}'"), line
        assert f"no unit '{ref}'" in one_line(run("sales", "units", "release", ref), 1)
    deal = ok(run("sales", "deal", "subscribe", "XL2/3-1201", "--buyer", "13800000001",
                  "--deposit", "50000", "--json"))
    line = one_line(run("sales", "deal", "change-unit", str(deal["id"]), "--unit", HUGE,
                        "--reason", "换房"), 1)
    assert f"no unit '{HUGE}'" in line
    assert "no unit" in one_line(run("sales", "deal", "subscribe", ABOVE, "--buyer",
                                     "13800000002", "--deposit", "1"), 1)
    one_line(run("sales", "deal", "show", ABOVE), 2)  # an id option's own range


def test_ids_out_of_range_in_the_sdk_and_the_api(crm: CRM, api_client: ApiClients,
                                                 tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    for bad in (2**31, 10**23, 0):
        with pytest.raises(NotFound, match="no unit"):
            sales.units.get(bad)
    for bad in (2**31, 10**23, 0, -1):
        with pytest.raises(NotFound, match="no deal"):
            sales.deals.show(bad)
        with pytest.raises(NotFound, match="no ticket"):
            sales.tickets.refund(bad, project=PROJECT)
    manager = api_client("manager", staff="m1")
    for ref in (HUGE, ABOVE):
        problem_of(manager.post(f"/v1/sales/units/{ref}/hold", json={"customer": "13800000001"}),
                   404)
        problem_of(manager.post(f"/v1/sales/units/{ref}/release"), 404)
        problem_of(manager.get(f"/v1/sales/deals/{ref}"), 422)
        problem_of(manager.post(f"/v1/sales/deals/{ref}/receipts",
                                json={"amount": "1", "date": "2026-03-02"}), 422)
        problem_of(manager.post("/v1/sales/deals", json={
            "unit": ref, "buyer": "13800000001", "deposit": "1"}), 404)
    problem_of(manager.post("/v1/sales/deals", json={
        "unit": "XL2/3-1201", "buyer": "13800000001", "deposit": "1", "ticket": int(HUGE)}),
        422)


# -- 2. a JSON float is refused --------------------------------------------------------------
def test_the_api_refuses_json_floats_for_money(crm: CRM, api_client: ApiClients,
                                               tmp_path: Path) -> None:
    setup_units(crm, tmp_path)
    manager = api_client("manager", staff="m1")
    base = {"unit": "XL2/3-1201", "buyer": "13800000001"}
    for body in ({**base, "deposit": 1000.5}, {**base, "deposit": "1", "price": 1970000.0},
                 {**base, "deposit": "1", "discount": 0.1}, {**base, "deposit": "1e5"},
                 {**base, "deposit": "1",
                  "parties": [{"customer": "13800000002", "share": 50.5}]}):
        problem_of(manager.post("/v1/sales/deals", json=body), 422)
    problem_of(manager.post("/v1/sales/tickets", json={
        "project": PROJECT, "customer": "13800000001", "amount": 20000.0}), 422)
    made = manager.post("/v1/sales/deals", json={**base, "deposit": 50000})  # an integer
    assert made.status_code == 201, made.text
    did = made.json()["id"]
    problem_of(manager.post(f"/v1/sales/deals/{did}/sign", json={
        "contract_no": "HT-1", "total": 1850000.10, "payment": "full"}), 422)
    problem_of(manager.post(f"/v1/sales/deals/{did}/receipts",
                            json={"amount": 0.1, "date": "2026-03-02"}), 422)
    problem_of(manager.post(f"/v1/sales/deals/{did}/receipts",
                            json={"amount": "0.001", "date": "2026-03-02"}), 422)
    got = manager.post(f"/v1/sales/deals/{did}/receipts",
                       json={"amount": "0.10", "date": "2026-03-02"})
    assert got.status_code == 201 and got.json()["amount"] == "0.10"


# -- 3. more than two decimals, exponents, NaN ------------------------------------------------
def test_money_is_never_rounded(crm: CRM, cli_runner: RecrmCliRunner,
                                tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001")
    deal = sales.deals.subscribe("XL2/3-1201", wang, deposit="50000", now=NOW)
    for bad in ("0.001", "0.005", "1.234"):
        with pytest.raises(InvalidInput, match="more than two decimal places"):
            sales.payments.receive(deal.id, bad, date=dt.date(2026, 3, 2))
    with pytest.raises(InvalidInput, match="no exponent"):
        sales.payments.receive(deal.id, "1e5", date=dt.date(2026, 3, 2))
    for bad in ("NaN", "Infinity", "-inf"):
        with pytest.raises(InvalidInput, match="is not a number"):
            sales.payments.receive(deal.id, bad, date=dt.date(2026, 3, 2))
    with pytest.raises(InvalidInput, match="more than two decimal places"):
        sales.deals.subscribe("XL2/3-1202", wang, deposit="1000.005", now=NOW)
    assert sales.deals.show(deal.id).receipts[0].amount == Decimal("50000.00")
    run = cli_runner.invoke
    line = one_line(run("sales", "tickets", "issue", "--project", PROJECT, "--customer",
                        "13800000001", "--amount", "1.234"), 2)
    assert "--amount" in line and "more than two decimal places" in line
    assert "is not a number" in one_line(run(
        "sales", "tickets", "issue", "--project", PROJECT, "--customer", "13800000001",
        "--amount", "NaN"), 2)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "7,1,3,301,98.50,,,,1600000.123,,可售\n"
                   "7,1,3,302,98.505,,,,1600000,,可售\n"
                   "7,1,3,303,98.50,,,,1e6,,可售\n"
                   "7,1,3,304,98.50,,,,1600000.10,,可售\n", encoding="utf-8")
    outcome = sales.units.import_file(bad, project=PROJECT)
    assert outcome.created == 1 and outcome.rejected == 3
    reasons = {r.row: (r.field, r.reason) for r in outcome.rejections}
    assert reasons[1][0] == "list_price" and "more than two decimal places" in reasons[1][1]
    assert reasons[2][0] == "gross_area"
    assert "no exponent" in reasons[3][1]
    assert sales.units.get("XL2/7-304").list_price == Decimal("1600000.10")


# -- 4. the deposit paid at subscription is received -----------------------------------------
def test_the_deposit_is_received_at_subscription(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001", "王伟")
    deal = sales.deals.subscribe("XL2/3-1201", wang, deposit="50000", now=NOW)
    before = sales.deals.show(deal.id, now=NOW)
    assert before.received == Decimal("50000.00")
    assert before.balance == Decimal("1920000.00")  # the price less what was received
    assert before.next_due is None  # nothing scheduled yet
    sales.deals.sign(deal.id, contract_no="HT-9", total="1970000", payment="instalments",
                     now=NOW + dt.timedelta(days=2))
    sales.payments.schedule(deal.id, "instalments:3", now=NOW)
    shown = sales.deals.show(deal.id, now=NOW)
    assert shown.received == Decimal("50000.00")
    assert shown.balance == Decimal("1920000.00")
    assert shown.schedule[0].kind == "deposit" and shown.schedule[0].outstanding == 0
    assert shown.next_due is not None and shown.next_due.kind == "down_payment"
    owed = sales.payments.receivables(project=PROJECT, now=NOW)
    assert "deposit" not in {r.kind for r in owed}
    assert sum(r.outstanding for r in owed) == Decimal("1920000.00")
    [due] = [e for e in crm.customers.view(wang).timeline if e.kind == "sales_payment_due"]
    assert due.data["kind"] == "down_payment" and due.data["balance"] == "1920000.00"


# -- 5. the 360 view after a change of buyer or of unit --------------------------------------
def test_360_view_after_changes_of_buyer_and_unit(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang, li, zhao = (customer(crm, f"1380000000{i}") for i in (1, 2, 3))
    deal = sales.deals.subscribe("XL2/3-1201", wang, parties=[f"{li}:spouse:50"],
                                 deposit="50000", now=NOW)
    sales.payments.schedule(deal.id, "full", now=NOW)
    sales.deals.change_unit(deal.id, "XL2/3-1203", reason="换房",
                            now=NOW + dt.timedelta(hours=1))
    sales.deals.change_buyer(deal.id, wang, parties=[f"{zhao}:co_owner:30"], reason="更名",
                             now=NOW + dt.timedelta(hours=2))
    sales.payments.schedule(deal.id, "mortgage", now=NOW + dt.timedelta(hours=3))
    removed = crm.customers.view(li).timeline
    assert not [e for e in removed if e.kind == "sales_payment_due"]
    kinds = [e.kind for e in removed if e.source == "sales"]
    assert "sales_change_buyer" in kinds and kinds.count("sales_schedule") == 1
    for who in (wang, zhao):
        assert [e for e in crm.customers.view(who).timeline if e.kind == "sales_payment_due"]
    lines = {e.kind + str(e.data.get("plan", "")): e
             for e in crm.customers.view(wang).timeline if e.source == "sales"}
    assert "XL2/3-1201" in lines["sales_subscribe"].title
    assert lines["sales_subscribe"].data["unit"] == "XL2/3-1201"
    assert "XL2/3-1201" in lines["sales_schedulefull"].title
    assert "XL2/3-1201 → XL2/3-1203" in lines["sales_change_unit"].title
    assert "XL2/3-1203" in lines["sales_schedulemortgage"].title
    assert "XL2/3-1203" in lines["sales_payment_due"].title


# -- 6. no receipt beyond what is outstanding ------------------------------------------------
def test_overpayment_is_refused(crm: CRM, cli_runner: RecrmCliRunner,
                                api_client: ApiClients, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001")
    deal = sales.deals.subscribe("XL2/3-1201", wang, deposit="50000", now=NOW)
    with pytest.raises(Refused, match=r"1920000\.00 outstanding"):
        sales.payments.receive(deal.id, "99999999", date=dt.date(2026, 3, 2))
    line = one_line(cli_runner.invoke("sales", "payments", "receive", str(deal.id),
                                      "--amount", "99999999", "--date", "2026-03-02"), 1)
    assert "outstanding" in line
    problem_of(api_client("manager", staff="m1").post(
        f"/v1/sales/deals/{deal.id}/receipts", json={"amount": "1920000.01",
                                                     "date": "2026-03-02"}), 409)
    first = sales.payments.receive(deal.id, "1920000", date=dt.date(2026, 3, 3), ref="ALL")
    again = sales.payments.receive(deal.id, "1920000", date=dt.date(2026, 3, 3), ref="ALL")
    assert again.id == first.id  # the same receipt again is no overpayment
    with pytest.raises(Refused, match=r" 0\.00 outstanding"):
        sales.payments.receive(deal.id, "0.01", date=dt.date(2026, 3, 3))
    assert sales.deals.show(deal.id).balance == Decimal("0.00")


# -- 7. messages --------------------------------------------------------------------------------
def test_messages_name_the_real_option_and_local_time(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    run = _cli(crm, cli_runner, tmp_path).invoke
    line = one_line(run("sales", "deal", "subscribe", "XL2/3-1201", "--buyer", "13800000001",
                        "--party", "13800000002:spouse:abc", "--deposit", "1"), 2)
    assert "--party" in line and "--share" not in line
    line = one_line(run("sales", "units", "hold", "nonsense", "--customer", "1"), 2)
    assert "UNIT" in line and "--unit" not in line
    line = one_line(run("sales", "deal", "subscribe", "nonsense", "--buyer", "1",
                        "--deposit", "1"), 2)
    assert "UNIT" in line and "--unit" not in line
    line = one_line(run("sales", "units", "hold", "XL2/3-1201", "--customer", "abc"), 2)
    assert "--customer" in line and "--mobile" not in line
    line = one_line(run("sales", "deal", "subscribe", "XL2/3-1201", "--buyer", "abc",
                        "--deposit", "1"), 2)
    assert "--buyer" in line and "--mobile" not in line
    line = one_line(run("sales", "tickets", "issue", "--project", PROJECT, "--customer", "abc",
                        "--amount", "1"), 2)
    assert "--customer" in line and "--mobile" not in line
    held = run("sales", "units", "hold", "XL2/3-1201", "--customer", "13800000001")
    assert held.exit_code == 0, held.stderr
    until = held.stderr.strip().rsplit("until ", 1)[1]
    line = one_line(run("sales", "units", "hold", "XL2/3-1201", "--customer", "13800000002"), 1)
    assert line.endswith(f"held for another customer until {until}") and "UTC" not in line
    assert "no such project" in one_line(run("sales", "units", "list", "--project", "NOPE"), 1)
