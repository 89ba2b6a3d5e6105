"""Privacy requests: export lists the person's lists, messages and suppressions; erase
deletes their list memberships and unlinks their outbox rows, so the core's scan finds
nothing, while the suppression (a keyed hash) stays."""

from __future__ import annotations

import pytest
from newsletter_testkit import HTML, SEGMENT, add_customers
from recrm_newsletter import Sender, service
from recrm_newsletter.tables import ListMemberRow, RecipientRow
from sqlalchemy import func, select

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("newsletter")


def test_export_and_erase(crm: CRM, tmp_path: object) -> None:
    ids = add_customers(crm, 3)
    news = service(crm)
    csv = tmp_path / "l.csv"  # type: ignore[operator]
    csv.write_text("mobile\n13812340000\n13812340001\n", encoding="utf-8")
    news.import_list("vip", csv)
    news.save_segment("prospects", SEGMENT)
    news.create_campaign("launch", channel="email", segment="prospects", subject="s",
                         html=HTML)
    news.schedule("launch")
    import io

    crm.console_stream = io.StringIO()
    Sender(crm).run()
    news.suppress("email", "owner0@example.com")
    exported = crm.privacy.export(ids[0])["plugins"]["newsletter"]
    assert exported["lists"] == ["vip"]
    assert [(m["send"], m["state"]) for m in exported["messages"]] == [("launch", "sent")]
    assert exported["suppressions"][0]["address"] == "owner0@example.com"
    report = crm.privacy.erase(ids[0], reason="PIPL request")
    assert report.verified
    assert {"newsletter_list_members", "newsletter_recipients"} <= {
        s["table"] for s in report.steps}
    with crm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).where(
            ListMemberRow.customer_id == ids[0])) == 0
        assert uow.session.scalar(select(func.count()).where(
            RecipientRow.customer_id.is_(None))) == 1
    assert news.report("launch").sent == 3  # the send's figures stay true
    assert news.is_suppressed("email", "owner0@example.com")  # survives the erasure
    assert crm.privacy.export(ids[1])["plugins"]["newsletter"]["lists"] == ["vip"]


def test_merge_moves_list_memberships(crm: CRM, tmp_path: object) -> None:
    a = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer
    b = crm.customers.add({"name": "王伟", "mobile": "13912345678"}).customer
    csv = tmp_path / "l.csv"  # type: ignore[operator]
    csv.write_text("mobile\n13912345678\n", encoding="utf-8")
    service(crm).import_list("vip", csv)
    crm.customers.merge(a.id, b.id)
    with crm.unit_of_work() as uow:
        assert list(uow.session.scalars(select(ListMemberRow.customer_id))) == [a.id]
