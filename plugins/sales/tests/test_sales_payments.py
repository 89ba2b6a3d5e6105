"""Tickets (认筹), payment schedules, receipts idempotent on the reference,
receivables, the area adjustment (补差), reminders and what is due next on the 360
view."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sales_testkit import NOW, PROJECT, customer, setup_units

from recrm_core import CRM, InvalidInput, Refused

pytestmark = pytest.mark.recrm_plugins("sales")


def test_tickets_issue_call_convert_refund(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    a, b, c = (customer(crm, f"1380000000{i}") for i in (1, 2, 3))
    crm.projects.ensure("YH1", "Yuhu")
    numbers = [sales.tickets.issue(PROJECT, who, "20000", now=NOW).number for who in (a, b, c)]
    assert numbers == [1, 2, 3]
    assert sales.tickets.issue("YH1", a, "10000").number == 1
    called = sales.tickets.call(PROJECT, 2, now=NOW)
    assert [t.number for t in called] == [1, 2]
    with pytest.raises(Refused, match="not called"):
        sales.deals.subscribe("XL2/3-1201", c, deposit="50000", ticket=3, now=NOW)
    with pytest.raises(Refused, match="another customer"):
        sales.deals.subscribe("XL2/3-1201", c, deposit="50000", ticket=2, now=NOW)
    deal = sales.deals.subscribe("XL2/3-1201", a, deposit="50000", ticket=1, now=NOW)
    assert deal.ticket == 1
    with pytest.raises(InvalidInput, match="give --project"):
        sales.tickets.refund(1)
    with pytest.raises(Refused, match="converted"):
        sales.tickets.refund(1, project=PROJECT)
    refunded = sales.tickets.refund(3, project=PROJECT)
    assert refunded.state == "refunded"
    states = {t.number: t.state for t in sales.tickets.list(project=PROJECT)}
    assert states == {1: "converted", 2: "called", 3: "refunded"}


def _signed(crm: CRM, tmp_path: Path) -> tuple[int, int]:
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001", "王伟")
    deal = sales.deals.subscribe("XL2/3-1201", wang, deposit="50000", now=NOW)
    sales.deals.sign(deal.id, contract_no="HT-9", total="1970000", payment="instalments",
                     now=NOW + dt.timedelta(days=2))
    return deal.id, wang


def test_schedule_receive_and_receivables(crm: CRM, tmp_path: Path) -> None:
    deal, wang = _signed(crm, tmp_path)
    from recrm_sales import service

    pay = service(crm).payments
    lines = pay.schedule(deal, "instalments:3", now=NOW)
    assert [(x.kind, x.due.isoformat(), x.amount) for x in lines] == [
        ("deposit", "2026-03-02", Decimal("50000.00")),
        ("down_payment", "2026-03-11", Decimal("541000.00")),
        ("instalment", "2026-04-04", Decimal("459666.67")),
        ("instalment", "2026-05-04", Decimal("459666.67")),
        ("instalment", "2026-06-04", Decimal("459666.66")),
    ]
    assert sum(x.amount for x in lines) == Decimal("1970000.00")
    first = pay.receive(deal, "50000", date=dt.date(2026, 3, 2), ref="BANK-1")
    again = pay.receive(deal, "50000.00", date=dt.date(2026, 3, 2), ref="BANK-1")
    assert first.id == again.id
    with pytest.raises(Refused, match="recorded for"):
        pay.receive(deal, "1", date=dt.date(2026, 3, 2), ref="BANK-1")
    pay.receive(deal, "41000", date=dt.date(2026, 3, 10), ref="BANK-2")
    later = dt.datetime(2026, 3, 20, 2, tzinfo=dt.UTC)
    shown = service(crm).deals.show(deal, now=later)
    # the deposit was received at subscription (a receipt of its own): 50000 + 91000
    assert shown.received == Decimal("141000.00")
    assert shown.receipts[0].ref == "deposit"
    assert shown.balance == Decimal("1829000.00")
    assert shown.next_due is not None and shown.next_due.kind == "down_payment"
    assert shown.next_due.outstanding == Decimal("450000.00") and shown.next_due.overdue
    owed = pay.receivables(project=PROJECT, now=later)
    assert [(r.kind, r.outstanding, r.overdue) for r in owed][:2] == [
        ("down_payment", Decimal("450000.00"), True),
        ("instalment", Decimal("459666.67"), False)]
    assert [r.kind for r in pay.receivables(overdue=True, now=later)] == ["down_payment"]
    assert all(r.customer_id == wang for r in owed)
    # 补差: measured 1.5 ㎡ less, refunded at the deal's price per ㎡
    adjusted = pay.adjust_area(deal, "97.00", due=dt.date(2026, 7, 1), now=later)
    [adj] = [x for x in adjusted if x.kind == "area_adjustment"]
    assert adj.amount == Decimal("-30000.00")
    with pytest.raises(Refused, match="sums to"):
        pay.schedule(deal, [{"kind": "deposit", "due": dt.date(2026, 3, 2),
                             "amount": "1"}], now=NOW)


def test_schedule_from_a_toml_file(crm: CRM, tmp_path: Path) -> None:
    deal, _ = _signed(crm, tmp_path)
    from recrm_sales import service

    plan = tmp_path / "plan.toml"
    plan.write_text('[[payment]]\nkind = "deposit"\ndue = 2026-03-02\namount = "50000"\n'
                    '[[payment]]\nkind = "mortgage"\ndue = 2026-05-01\namount = "1920000.00"\n',
                    encoding="utf-8")
    lines = service(crm).payments.schedule(deal, str(plan), now=NOW)
    assert [x.kind for x in lines] == ["deposit", "mortgage"]
    plan.write_text('[[payment]]\nkind = "deposit"\ndue = 2026-03-02\namount = 1970000.0\n',
                    encoding="utf-8")
    with pytest.raises(InvalidInput, match="not exact"):
        service(crm).payments.schedule(deal, str(plan), now=NOW)


def test_remind_writes_the_event_once_and_360_shows_what_is_due(
        crm: CRM, tmp_path: Path) -> None:
    deal, wang = _signed(crm, tmp_path)
    from recrm_sales import service

    pay = service(crm).payments
    pay.schedule(deal, "mortgage", now=NOW)
    crm.webhooks.add("https://example.com/hook", "sales.payment_due")
    # the deposit was paid at subscription: nothing to announce for it
    assert pay.remind(days=7, now=dt.datetime(2026, 3, 1, tzinfo=dt.UTC)) == 0
    at = dt.datetime(2026, 3, 6, 2, tzinfo=dt.UTC)
    assert pay.remind(days=7, now=at) == 1  # the down payment due 03-11, once
    assert pay.remind(days=7, now=at) == 0
    view = crm.customers.view(wang)
    due = [e for e in view.timeline if e.kind == "sales_payment_due"]
    assert len(due) == 1 and due[0].data["kind"] == "down_payment"
    assert "541000.00" in due[0].title
    assert {e.kind for e in view.timeline} >= {"sales_subscribe", "sales_sign",
                                               "sales_schedule"}
