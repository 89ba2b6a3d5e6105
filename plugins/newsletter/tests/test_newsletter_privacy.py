"""Privacy requests: export lists the person's lists, messages and suppressions; erase
deletes their list memberships and unlinks their outbox rows, so the core's scan finds
nothing, while the suppression (a keyed hash) stays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from newsletter_testkit import HTML, SEGMENT, SMS, add_customers
from recrm_newsletter import Sender, service
from recrm_newsletter.tables import ListMemberRow, RecipientRow
from recrm_newsletter.transports import read_file
from sqlalchemy import func, select

from recrm_core import CRM, Message, PluginError

#: outside the SMS quiet hours
NOON = dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.UTC)

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


def test_the_file_transports_messages_take_part(crm_factory: Any, tmp_path: Path) -> None:
    """Found by a new user: the .eml/.json files the file transport wrote (address,
    name, text) were left by an erasure and missing from the export."""
    out = tmp_path / "out"
    crm = crm_factory(plugins=["newsletter"], settings={"newsletter": {
        "email_transport": "file", "sms_transport": "file", "file_directory": str(out)}})
    ids = add_customers(crm, 3)
    for cid in ids:
        crm.consent.grant(cid, "sms", "marketing", source="form")
    news = service(crm)
    news.save_segment("prospects", SEGMENT)
    news.create_campaign("launch", channel="email", segment="prospects",
                         subject="开盘 · {{ name }}", html=HTML)
    news.create_campaign("launch-sms", channel="sms", segment="prospects", text=SMS)
    news.schedule("launch", at=NOON - dt.timedelta(hours=1))
    news.schedule("launch-sms", at=NOON - dt.timedelta(hours=1))
    assert Sender(crm).run(now=NOON).sent == 6
    # a message of another sender (a survey's invitation) goes through the same files
    crm.send_message(Message(channel="email", to="owner0@example.com", subject="问卷",
                             body="王伟0，请评价"))
    assert len(list(out.iterdir())) == 7

    exported = crm.privacy.export(ids[0])["plugins"]["newsletter"]["files"]
    assert sorted(f["file"].rsplit(".", 1)[1] for f in exported) == ["eml", "eml", "json"]
    assert all("王伟0" in f["text"] for f in exported)  # decoded: the .eml's body is base64
    assert {f["to"] for f in exported} == {"owner0@example.com", "+8613812340000"}

    planned = crm.privacy.erase(ids[0], dry_run=True)
    assert {"source": "newsletter", "table": "newsletter_files", "deleted": 3,
            "anonymised": 0, "retained": 0, "basis": None} in planned.steps
    assert len(list(out.iterdir())) == 7  # a dry run keeps them, as it keeps the rows

    report = crm.privacy.erase(ids[0], reason="PIPL request")
    assert report.verified
    left = sorted(out.iterdir())
    assert len(left) == 4
    texts = [read_file(path) for path in left]
    for text in texts:
        blob = "\n".join(text.values())
        assert "owner0@example.com" not in blob and "13812340000" not in blob
        assert "王伟0" not in blob
    assert {t["to"] for t in texts} == {"owner1@example.com", "owner2@example.com",
                                        "+8613812340001", "+8613812340002"}
    assert crm.privacy.export(ids[1])["plugins"]["newsletter"]["files"]


def test_a_file_to_someone_else_naming_the_person_rolls_the_erasure_back(
        crm_factory: Any, tmp_path: Path) -> None:
    """The scan covers the files: one sent to another person that still holds this
    person's mobile stops the erasure, naming the file, and nothing is changed."""
    out = tmp_path / "out"
    crm = crm_factory(plugins=["newsletter"], settings={"newsletter": {
        "email_transport": "file", "file_directory": str(out)}})
    ids = add_customers(crm, 2)
    crm.send_message(Message(channel="email", to="owner1@example.com", subject="推荐",
                             body="您推荐的朋友（+86 138 1234 0000）已到访",
                             headers={"Message-ID": "<referral-1@example.com>"}))
    crm.send_message(Message(channel="email", to="owner0@example.com", body="您好"))
    with pytest.raises(PluginError, match=r"out/referral-1_example\.com\.eml \(sent to "
                       r"someone else\) still holds the person's mobile"):
        crm.privacy.erase(ids[0])
    assert len(list(out.iterdir())) == 2
    assert crm.customers.get(ids[0]).email == "owner0@example.com"


def test_a_retention_sweep_goes_on_past_a_file_it_cannot_let_go(crm_factory: Any,
                                                                 tmp_path: Path) -> None:
    # the files' scan refuses as the core's does: the sweep reports that prospect and
    # erases the others (it stopped at the first before)
    out = tmp_path / "out"
    crm = crm_factory(plugins=["newsletter"], settings={
        "privacy": {"retention_months": 12},
        "newsletter": {"email_transport": "file", "file_directory": str(out)}})
    ids = add_customers(crm, 2)
    crm.send_message(Message(channel="email", to="friend@example.com",
                             body="推荐人 owner0@example.com"))
    crm.send_message(Message(channel="email", to="owner1@example.com", body="您好"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    result = crm.privacy.sweep(now=later)
    assert [r.customer_id for r in result.erased] == [ids[1]]
    assert list(result.failed) == [ids[0]] and "email" in result.failed[ids[0]]
    assert [read_file(p)["to"] for p in out.iterdir()] == ["friend@example.com"]
