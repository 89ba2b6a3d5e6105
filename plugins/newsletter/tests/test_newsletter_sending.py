"""Sending over real SMTP (aiosmtpd) and a local HTTP SMS provider, on both backends:
what arrives, the way out every message carries, consent and suppressions checked at
send time, resumption, quiet hours and the frequency cap with a fixed clock."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from newsletter_testkit import HTML, SEGMENT, SMS, add_customers, smtp_server, smtp_settings
from recrm_newsletter import Sender, service, sms_length
from recrm_newsletter.tables import RecipientRow
from sqlalchemy import func, select, update

from recrm_core import CRM, InvalidInput, Refused
from recrm_core.unsubscribe import read_unsubscribe_token, unsubscribe

CrmFactory = Callable[..., CRM]
ZONE = dt.timezone(dt.timedelta(hours=8))
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=ZONE)


def _campaign(crm: CRM, name: str = "launch", channel: str = "email", **kw: Any) -> None:
    news = service(crm)
    if "prospects" not in news.segments():
        news.save_segment("prospects", SEGMENT)
    if channel == "email":
        kw.setdefault("subject", "星珑湾三期开盘 · {{ name }}")
        kw.setdefault("html", HTML)
    else:
        kw.setdefault("text", SMS)
    news.create_campaign(name, channel=channel, segment="prospects", **kw)


def test_campaign_arrives_over_smtp_once_each_with_its_way_out(
        crm_factory: CrmFactory) -> None:
    with smtp_server() as (inbox, port):
        crm = crm_factory(plugins=["newsletter"], settings={"newsletter": smtp_settings(port)})
        ids = add_customers(crm, 6, consent=lambda i: i != 2)
        _campaign(crm)
        news = service(crm)
        news.schedule("launch")
        result = Sender(crm).run()
        assert result.started == ["launch"] and result.sent == 5
        assert sorted(r[0] for r in inbox.rcpt) == sorted(
            f"owner{i}@example.com" for i in range(6) if i != 2)
        for mail in inbox.messages:
            i = int(str(mail["To"]).removeprefix("owner").split("@")[0])
            assert str(mail["Subject"]) == f"星珑湾三期开盘 · 王伟{i}"
            plain = mail.get_body(("plain",))
            assert plain is not None and plain.get_content_charset() == "utf-8"
            link = str(mail["List-Unsubscribe"]).strip().strip("<>")
            assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            token = link.rsplit("/u/", 1)[1]
            found = read_unsubscribe_token(crm, token)
            assert (found.customer_id, found.channel, found.purpose) == (
                ids[i], "email", "marketing")
            html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
            text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert f"王伟{i}，您好" in html and link in html and link in text
        for raw in inbox.raw:  # headers 7-bit: the subject RFC 2047-encoded
            header = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            assert header.isascii() and b"Subject: =?utf-8?" in header
        assert len({m["Message-ID"] for m in inbox.messages}) == 5
        report = news.report("launch")
        assert (report.audience, report.sent, report.pending, report.send.state) == (
            5, 5, 0, "sent")
        # run again: nothing more leaves
        assert Sender(crm).run().sent == 0
        assert len(inbox.raw) == 5


def test_html_is_autoescaped_and_the_sandbox_holds(crm_factory: CrmFactory) -> None:
    crm = crm_factory(plugins=["newsletter"])
    c = crm.customers.add({"name": "<b>王</b>", "mobile": "13812345678",
                           "email": "w@example.com"}).customer
    _campaign(crm)
    message = service(crm).preview("launch", c.id)
    assert "&lt;b&gt;王&lt;/b&gt;" in (message.html or "")
    with pytest.raises(InvalidInput, match="template"):
        service(crm).create_campaign(
            "evil", channel="email", segment="prospects", subject="x",
            html="{{ ''.__class__.__mro__[1].__subclasses__() }} {{ unsubscribe_url }}")


def test_content_without_its_way_out_is_refused(crm_factory: CrmFactory) -> None:
    crm = crm_factory(plugins=["newsletter"])
    news = service(crm)
    news.save_segment("prospects", SEGMENT)
    with pytest.raises(Refused, match="unsubscribe"):
        news.create_campaign("a", channel="email", segment="prospects", subject="s",
                             html="<p>no way out</p>")
    with pytest.raises(Refused, match="回T退订"):
        news.create_campaign("b", channel="sms", segment="prospects", text="开盘了")
    with pytest.raises(InvalidInput, match="purpose"):
        news.create_campaign("c", channel="sms", segment="prospects", text=SMS,
                             purpose="spam")


def test_consent_withdrawn_or_suppressed_after_scheduling_is_not_sent(
        crm_factory: CrmFactory) -> None:
    with smtp_server() as (inbox, port):
        crm = crm_factory(plugins=["newsletter"], settings={"newsletter": smtp_settings(port)})
        ids = add_customers(crm, 5)
        _campaign(crm)
        news = service(crm)
        news.schedule("launch")
        sender = Sender(crm)
        sender.fill(news.get("launch").id)  # the outbox is written; then people change
        crm.consent.withdraw(ids[0], "email", "marketing", source="call")
        news.suppress("email", "OWNER1@example.com")
        crm.privacy.erase(ids[2])
        sender.run()
        got = sorted(r[0] for r in inbox.rcpt)
        assert got == ["owner3@example.com", "owner4@example.com"]
        report = news.report("launch")
        assert report.skipped == {"consent_withdrawn": 1, "erased_or_merged": 1,
                                  "suppressed": 1}
        assert report.sent == 2 and report.send.state == "sent"


def test_unsubscribing_is_a_withdrawal_and_a_later_grant_lifts_it(
        crm_factory: CrmFactory) -> None:
    with smtp_server() as (inbox, port):
        crm = crm_factory(plugins=["newsletter"], settings={"newsletter": smtp_settings(port)})
        ids = add_customers(crm, 2)
        _campaign(crm)
        news = service(crm)
        news.schedule("launch")
        Sender(crm).run()
        token = str(inbox.messages[0]["List-Unsubscribe"]).strip().strip("<>").rsplit(
            "/u/", 1)[1]
        link = read_unsubscribe_token(crm, token)
        unsubscribe(crm, link)
        assert news.report("launch").unsubscribed == 1
        assert not crm.consent.allowed(link.customer_id, "email")
        crm.consent.grant(link.customer_id, "email", source="mini_program")
        assert crm.consent.allowed(link.customer_id, "email")
        assert len(ids) == 2


def test_an_interrupted_send_resumes_without_sending_twice(crm_factory: CrmFactory) -> None:
    with smtp_server() as (inbox, port):
        settings = smtp_settings(port, batch_size=3, lease_seconds=60)
        crm = crm_factory(plugins=["newsletter"], settings={"newsletter": settings})
        add_customers(crm, 8)
        _campaign(crm)
        news = service(crm)
        news.schedule("launch")
        sent: list[str] = []

        class Stop(BaseException):  # like a kill: nothing in the sender catches it
            pass

        def dies_at_the_fifth(message: Any) -> Any:
            if len(sent) == 4:
                raise Stop
            sent.append(message.to)
            return crm.send_message(message)

        # Batches of 3: the first goes, the second stops after its first message, so
        # its other two rows stay claimed under the dead sender's lease.
        with pytest.raises(Stop):
            Sender(crm, deliver=dies_at_the_fifth).run()
        assert len(inbox.raw) == 4
        # Within the lease another sender leaves the claimed rows alone ...
        assert Sender(crm).run().sent == 2
        assert len(inbox.raw) == 6
        # ... after it, it takes them.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
        assert Sender(crm).run(now=later).sent == 2
        assert sorted(r[0] for r in inbox.rcpt) == sorted(
            f"owner{i}@example.com" for i in range(8))
        assert news.report("launch").send.state == "sent"


def test_pause_resume_cancel(crm_factory: CrmFactory) -> None:
    crm = crm_factory(plugins=["newsletter"], settings={"newsletter": {
        "email_transport": "file", "file_directory": "unused"}})
    add_customers(crm, 2)
    _campaign(crm)
    news = service(crm)
    news.schedule("launch")
    assert news.pause("launch").state == "paused"
    assert Sender(crm).run(now=NOON).sent == 0
    assert news.resume("launch").state == "scheduled"
    with pytest.raises(Refused, match="only a paused"):
        news.resume("launch")
    assert news.cancel("launch").state == "cancelled"
    with pytest.raises(Refused):
        news.pause("launch")


def test_quiet_hours_pause_sms_and_the_cap_skips(crm_factory: CrmFactory,
                                                 tmp_path: Path) -> None:
    crm = crm_factory(plugins=["newsletter"], settings={
        "timezone": "Asia/Shanghai",
        "newsletter": {"sms_transport": "file", "file_directory": str(tmp_path / "out"),
                       "max_messages_per_week": 2}})
    add_customers(crm, 3, channel="sms")
    news = service(crm)
    night = dt.datetime(2026, 3, 2, 22, 30, tzinfo=ZONE)
    for n in range(3):
        _campaign(crm, f"sms{n}", channel="sms")
        news.schedule(f"sms{n}", at=night - dt.timedelta(hours=1))
    result = Sender(crm).run(now=night)
    assert result.sent == 0 and result.waiting == [f"sms{n}: quiet hours" for n in range(3)]
    assert news.get("sms0").note == "quiet hours"
    morning = dt.datetime(2026, 3, 3, 9, 0, tzinfo=ZONE)
    result = Sender(crm).run(now=morning)
    assert result.sent == 6 and result.skipped == 3
    assert news.report("sms2").skipped == {"frequency_cap": 3}
    assert news.get("sms0").note is None
    with crm.unit_of_work() as uow:  # one audit entry per run that sent: counts only
        from recrm_core.tables import AuditRow

        details = uow.session.scalars(select(AuditRow.details).where(
            AuditRow.action == "bulk_send")).all()
    assert [(d["plugin"], d["sent"], d["skipped"]) for d in details] == [("newsletter", 6, 3)]
    files = sorted((tmp_path / "out").glob("*.json"))
    assert len(files) == 6
    body = json.loads(files[0].read_text(encoding="utf-8"))
    assert body["text"].startswith("【星珑地产】") and body["text"].endswith("回T退订")
    assert body["idempotency_key"].startswith("nl-")


class _Provider(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        payload = json.loads(self.rfile.read(length))
        payload["header_key"] = self.headers.get("Idempotency-Key")
        payload["auth"] = self.headers.get("Authorization")
        type(self).received.append(payload)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"id": "m1"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Provider.received = []
    server = HTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/send", _Provider.received
    server.shutdown()


def test_http_sms_transport_posts_json(crm_factory: CrmFactory,
                                       provider: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = provider
    crm = crm_factory(plugins=["newsletter"], settings={"newsletter": {
        "sms_transport": "http", "sms_url": url, "sms_token": "s3cret", "quiet_hours": None}})
    add_customers(crm, 2, channel="sms")
    _campaign(crm, channel="sms")
    service(crm).schedule("launch")
    assert Sender(crm).run().sent == 2
    assert [r["to"] for r in received] == ["+8613812340000", "+8613812340001"]
    assert received[0]["text"] == "【星珑地产】王伟0，星珑湾三期今日开盘，详询销售中心。回T退订"
    assert received[0]["header_key"] == received[0]["idempotency_key"]
    assert received[0]["auth"] == "Bearer s3cret"


def test_sms_length_and_segments() -> None:
    assert (sms_length("a" * 160).segments, sms_length("a" * 161).segments) == (1, 2)
    assert sms_length("a" * 306).segments == 2 and sms_length("a" * 307).segments == 3
    assert (sms_length("回" * 70).segments, sms_length("回" * 71).segments) == (1, 2)
    assert sms_length("回" * 134).segments == 2 and sms_length("回" * 135).segments == 3
    assert sms_length("{}").encoding == "gsm7" and sms_length("{}").segments == 1


def test_static_list_from_csv_and_a_magazine_issue(crm_factory: CrmFactory,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    crm = crm_factory(plugins=["newsletter"], settings={"newsletter": {
        "email_transport": "file", "file_directory": str(out)}})
    assert crm.consent.purposes()["newsletter"] == "业主刊物"
    ids = add_customers(crm, 4, purpose="newsletter")
    crm.consent.withdraw(ids[3], "email", "newsletter")
    csv = tmp_path / "owners.csv"
    csv.write_text("手机\n13812340000\n13812340001\n13812340003\n13900000000\n",
                   encoding="utf-8")
    news = service(crm)
    counts = news.import_list("owners", csv)
    assert counts == {"rows": 4, "added": 3, "already": 0, "repeated": 0, "unknown": 1,
                      "rejected": 0, "ignored_columns": [], "rejections": []}
    assert news.import_list("owners", csv)["added"] == 0  # idempotent
    news.create_publication("XLJ", "兴隆大家庭", "email")
    issue = news.create_issue("XLJ", 12, list_name="owners", subject="第 {{ issue }} 期",
                              html=HTML)
    assert (issue.name, issue.purpose) == ("XLJ#12", "newsletter")
    with pytest.raises(Refused, match="exists"):
        news.create_issue("XLJ", 12, list_name="owners", subject="x", html=HTML)
    news.schedule("XLJ#12")
    assert Sender(crm).run().sent == 2
    files = sorted(out.glob("*.eml"))
    assert len(files) == 2 and b"List-Unsubscribe" in files[0].read_bytes()
    archive = news.archive("XLJ")
    assert [(r.send.issue_number, r.sent) for r in archive] == [(12, 2)]


def test_bounces_suppress(crm_factory: CrmFactory, tmp_path: Path) -> None:
    from recrm_newsletter.inbound import ingest

    crm = crm_factory(plugins=["newsletter"])
    lines = tmp_path / "bounces.jsonl"
    lines.write_text("\n".join(json.dumps(x) for x in [
        {"address": "hard@example.com", "type": "hard"},
        {"address": "soft@example.com", "type": "soft", "at": "2026-03-01T10:00:00+08:00"},
        {"address": "soft@example.com", "type": "soft", "at": "2026-03-05T10:00:00+08:00"},
        {"address": "soft@example.com", "type": "soft", "at": "2026-03-09T10:00:00+08:00"},
        {"address": "late@example.com", "type": "soft", "at": "2026-01-01T10:00:00+08:00"},
        {"address": "late@example.com", "type": "soft", "at": "2026-03-01T10:00:00+08:00"},
        {"address": "late@example.com", "type": "soft", "at": "2026-03-09T10:00:00+08:00"},
        {"nonsense": 1}]), encoding="utf-8")
    result = ingest(crm, lines)
    assert (result.reports, result.suppressed, result.unreadable) == (7, 2, 1)
    news = service(crm)
    assert news.is_suppressed("email", "HARD@example.com")
    assert news.is_suppressed("email", "soft@example.com")
    assert not news.is_suppressed("email", "late@example.com")
    dsn = tmp_path / "dsn"
    dsn.mkdir()
    (dsn / "1.eml").write_bytes(_DSN)
    assert ingest(crm, dsn).suppressed == 1
    assert news.is_suppressed("email", "gone@example.com")
    # nothing in clear
    assert all(s.address_hash.startswith("h1:") for s in news.suppressions())


_DSN = b"""From: MAILER-DAEMON@example.com
To: news@xinglong.example
Subject: Undelivered Mail
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail could not be delivered.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; gone@example.com
Action: failed
Status: 5.1.1

--B--
"""


def test_outbox_rows_are_unique_per_send_customer_channel(crm_factory: CrmFactory) -> None:
    crm = crm_factory(plugins=["newsletter"])
    add_customers(crm, 3)
    _campaign(crm)
    news = service(crm)
    news.schedule("launch")
    send_id = news.get("launch").id
    sender = Sender(crm)
    sender.fill(send_id)
    with crm.unit_of_work() as uow:  # a fill forced to run again writes nothing new
        uow.session.execute(update(RecipientRow).values(state="pending"))
        from recrm_newsletter.tables import SendRow

        uow.session.execute(update(SendRow).values(audience_done=False, audience_after=0))
    sender.fill(send_id)
    with crm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(RecipientRow)) == 3


def test_a_list_from_xlsx_by_id_card(crm_factory: CrmFactory, tmp_path: Path) -> None:
    from openpyxl import Workbook

    crm = crm_factory(plugins=["newsletter"])
    c = crm.customers.add({"name": "王伟", "mobile": "13812345678",
                           "id_card": "11010519491231002X"}).customer
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["身份证号"])
    sheet.append(["11010519491231002X"])
    sheet.append(["110105194912310029"])  # a wrong check character: rejected or unknown
    path = tmp_path / "owners.xlsx"
    book.save(path)
    counts = service(crm).import_list("vip", path)
    assert counts["rows"] == 2 and counts["added"] == 1
    assert service(crm).list_size("vip") == 1 and c.id


def test_rate_limit_paces_a_sender(crm_factory: CrmFactory, tmp_path: Path) -> None:
    import time

    crm = crm_factory(plugins=["newsletter"], settings={"newsletter": {
        "email_transport": "file", "file_directory": str(tmp_path), "rate_limit": 20}})
    add_customers(crm, 5)
    _campaign(crm)
    service(crm).schedule("launch")
    started = time.monotonic()
    assert Sender(crm).run().sent == 5
    assert time.monotonic() - started >= 4 / 20
