"""Fixes from the acceptance review: a hostile template is refused in bounded time and
memory (at create, preview, test send and real send alike), an empty SMS refusal text
is a configuration error, a test send carries a link that withdraws nobody's consent,
a bounce read again is a no-op, and the CLI's send and list import edges."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from newsletter_testkit import HTML, SEGMENT, add_customers
from recrm_newsletter import Sender, service
from recrm_newsletter.content import MAX_OUTPUT, render
from recrm_newsletter.service import TEST_TOKEN
from recrm_newsletter.tables import BounceRow, RecipientRow
from sqlalchemy import func, select

from recrm_core import CRM, ConfigError, InvalidInput, Message, NotFound
from recrm_core.testing import CliResult, RecrmCliRunner
from recrm_core.unsubscribe import read_unsubscribe_token

CrmFactory = Callable[..., CRM]
pytestmark = pytest.mark.recrm_plugins("newsletter")

NESTED = ("{{ unsubscribe_url }}{% for i in range(100000) %}{% for j in range(100000) %}"
          "x{% endfor %}{% endfor %}")
HOSTILE = [
    NESTED,
    "{{ unsubscribe_url }}{% for i in range(10**9) %}x{% endfor %}",
    # within the range cap, but 10^8 iterations: the step budget
    "{{ unsubscribe_url }}{% for i in range(10000) %}{% for j in range(10000) %}"
    "{% endfor %}{% endfor %}",
    # output past the limit
    "{{ unsubscribe_url }}{% for i in range(10000) %}{{ 'x' * 200 }}{% endfor %}",
    "{{ unsubscribe_url }}{{ 'x' * 10**9 }}",
    "{{ unsubscribe_url }}{{ 'x'|center(10**9) }}",
    "{{ unsubscribe_url }}{{ '%999999999d'|format(1) }}",
    "{{ unsubscribe_url }}{{ '{:>999999999}'.format(1) }}",
    "{{ unsubscribe_url }}{% set ns = namespace(s='x') %}{% for i in range(60) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{{ unsubscribe_url }}{{ 1 / 0 }}",
    "{{ unsubscribe_url }}{{ 7 ** 10000000 }}",
    "{{ unsubscribe_url }}{% set ns = namespace(n=10**1000) %}{% for i in range(40) %}"
    "{% set ns.n = ns.n * ns.n %}{% endfor %}",
]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("template", HOSTILE)
def test_a_hostile_template_is_a_template_error_in_bounded_time(template: str) -> None:
    before, start = _rss_mb(), time.monotonic()
    with pytest.raises(InvalidInput) as raised:
        render(template, {"unsubscribe_url": "https://x.invalid/u/T"}, html=True)
    assert raised.value.field == "template"
    assert time.monotonic() - start < 10
    assert _rss_mb() - before < 200


def test_an_ordinary_template_still_renders() -> None:
    text = render("{{ name }}{% for i in range(3) %}{{ loop.index }}{% endfor %}"
                  "{{ 'ab' * 2 }}{{ '%05d'|format(7) }}{{ '{:>4}'.format(1) }}"
                  "{{ '订单 12345678 优惠 50%'|upper }}{{ '{} 12345678'.format(1) }}",
                  {"name": "<b>"}, html=True)
    assert text == "&lt;b&gt;123abab00007   1订单 12345678 优惠 50%1 12345678"
    big = render("{{ 'x' * n }}", {"n": MAX_OUTPUT})
    assert len(big) == MAX_OUTPUT


def _one_line(result: CliResult) -> str:
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("template", [NESTED, "{{ unsubscribe_url }}{% for i in "
                                      "range(10**9) %}x{% endfor %}"])
def test_campaign_create_refuses_a_hostile_template_on_one_line(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, template: str) -> None:
    run = cli_runner.invoke
    assert run("newsletter", "segment", "save", "all", '{"all": []}').exit_code == 0
    html = tmp_path / "evil.html"
    html.write_text(template, encoding="utf-8")
    result = run("newsletter", "campaign", "create", "evil", "--channel", "email",
                 "--segment", "all", "--subject", "s", "--html", str(html))
    assert result.exit_code == 2, result.stderr
    assert "the template: " in _one_line(result)
    assert "evil" not in {s.name for s in service(crm).sends()}


def test_preview_test_and_real_sends_use_the_same_bounded_rendering(crm: CRM) -> None:
    # harmless with the sample fields used at create, hostile for a real customer
    evil = ("{% if customer_id > 0 %}{% for i in range(10000) %}{% for j in range(10000) %}"
            "x{% endfor %}{% endfor %}{% endif %}{{ unsubscribe_url }}")
    ids = add_customers(crm, 1)
    news = service(crm)
    news.save_segment("prospects", SEGMENT)
    news.create_campaign("evil", channel="email", segment="prospects", subject="s",
                         html=evil)
    with pytest.raises(InvalidInput, match="template"):
        news.preview("evil", ids[0])
    with pytest.raises(InvalidInput, match="template"):
        news.test_send("evil", "me@example.com", ids[0])
    news.schedule("evil")
    result = Sender(crm).run()
    assert (result.sent, result.failed) == (0, 1)
    with crm.unit_of_work(readonly=True) as uow:
        detail = uow.session.scalar(select(RecipientRow.detail))
    assert detail is not None and "template" in detail


def test_an_empty_sms_refusal_text_is_refused(crm_factory: CrmFactory) -> None:
    for blank in ("", "   "):
        with pytest.raises(ConfigError, match=r"sms_refusal: .*must not be empty"):
            crm = crm_factory(plugins=["newsletter"],
                              settings={"newsletter": {"sms_refusal": blank}})
            service(crm).conf  # noqa: B018 - settings may be read lazily


def test_a_test_send_withdraws_nobodys_consent(
        crm_factory: CrmFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    crm = crm_factory(plugins=["newsletter"])
    ids = add_customers(crm, 2)
    news = service(crm)
    news.save_segment("prospects", SEGMENT)
    news.create_campaign("launch", channel="email", segment="prospects", subject="s",
                         html=HTML)
    sent: list[Message] = []

    def capture(message: Message) -> Any:
        sent.append(message)
        from recrm_core import DeliveryResult
        return DeliveryResult(ok=True, transport="test")

    monkeypatch.setattr(crm, "send_message", capture)
    signed: list[int] = []
    svc = sys.modules["recrm_newsletter.service"]
    real = svc.unsubscribe_url

    def spy(crm_: CRM, customer_id: int, *args: Any) -> str:
        signed.append(customer_id)
        return real(crm_, customer_id, *args)

    monkeypatch.setattr(svc, "unsubscribe_url", spy)
    news.test_send("launch", "someone@test.org")
    news.test_send("launch", "someone@test.org", ids[0])  # real merge fields, still no token
    assert signed == []
    for message in sent:
        assert message.customer_id is None
        link = message.headers["List-Unsubscribe"].strip("<>")
        assert link.endswith(f"/u/{TEST_TOKEN}") and link in (message.html or "")
        with pytest.raises(NotFound):
            read_unsubscribe_token(crm, link.rsplit("/u/", 1)[1])
    # the real messages still carry each customer's own signed link
    assert read_unsubscribe_token(crm, news.preview("launch", ids[0]).headers[
        "List-Unsubscribe"].strip("<>").rsplit("/u/", 1)[1]).customer_id == ids[0]


def test_the_test_link_page_refuses(crm: CRM, api_client: Any) -> None:
    client = api_client(None)
    assert client.post(f"/u/{TEST_TOKEN}").status_code == 404
    assert client.get(f"/u/{TEST_TOKEN}").status_code == 404


def _bounces(crm: CRM) -> int:
    with crm.unit_of_work(readonly=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(BounceRow)) or 0


def test_a_bounce_read_again_is_a_no_op(crm: CRM, cli_runner: RecrmCliRunner,
                                       tmp_path: Path) -> None:
    s1 = tmp_path / "s1.jsonl"
    s1.write_text(json.dumps({"address": "owner0@example.com", "type": "soft"}) + "\n",
                  encoding="utf-8")
    for _ in range(3):
        result = cli_runner.invoke("newsletter", "bounce", "ingest", str(s1), "--json")
        assert result.exit_code == 0, result.stderr
    assert result.json()["already_read"] == 1
    assert _bounces(crm) == 1
    assert not service(crm).is_suppressed("email", "owner0@example.com")
    # three different soft bounces still suppress
    lines = [json.dumps({"address": "owner0@example.com", "type": "soft",
                         "at": f"2026-03-0{d}T10:00:00+08:00"}) for d in (1, 2, 3)]
    s2 = tmp_path / "s2.jsonl"
    s2.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from recrm_newsletter.inbound import ingest
    assert ingest(crm, s2).suppressed == 1
    assert service(crm).is_suppressed("email", "owner0@example.com")


DSN = """From MAILER-DAEMON Mon Mar  2 10:00:00 2026
From: MAILER-DAEMON@mx.example
To: news@xinglong.example
Message-ID: <dsn-1@mx.example>
Subject: Delivery delayed
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

delayed
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; owner1@example.com
Action: delayed
Status: 4.4.1

--b--
"""


def test_a_delivery_report_read_again_is_a_no_op(crm: CRM, tmp_path: Path) -> None:
    from recrm_newsletter.inbound import ingest

    mbox = tmp_path / "bounces.mbox"
    mbox.write_text(DSN, encoding="utf-8")
    results = [ingest(crm, mbox) for _ in range(3)]
    assert [r.reports for r in results] == [1, 1, 1]
    assert [r.already_read for r in results] == [0, 1, 1]
    assert _bounces(crm) == 1
    assert not service(crm).is_suppressed("email", "owner1@example.com")


def test_sending_a_finished_send_is_refused(crm: CRM, cli_runner: RecrmCliRunner,
                                            tmp_path: Path) -> None:
    add_customers(crm, 1)
    run = cli_runner.invoke
    assert run("newsletter", "segment", "save", "prospects", json.dumps(SEGMENT)).exit_code == 0
    html = tmp_path / "b.html"
    html.write_text(HTML, encoding="utf-8")
    for name in ("done", "dropped"):
        assert run("newsletter", "campaign", "create", name, "--channel", "email",
                   "--segment", "prospects", "--subject", "s", "--html", str(html)
                   ).exit_code == 0
    assert run("newsletter", "campaign", "send", "done").exit_code == 0
    assert run("newsletter", "campaign", "cancel", "dropped").exit_code == 0
    for name, state in (("done", "sent"), ("dropped", "cancelled")):
        again = run("newsletter", "campaign", "send", name)
        assert again.exit_code == 1, again.stderr
        assert len(again.stderr.strip().splitlines()) == 1 and state in again.stderr


def test_a_list_import_ignores_unknown_columns(crm: CRM, cli_runner: RecrmCliRunner,
                                              tmp_path: Path) -> None:
    add_customers(crm, 2)
    csv = tmp_path / "vip.csv"
    csv.write_text("手机,备注,喜好\n13812340000,老业主,高尔夫\n13812340001,,\n", encoding="utf-8")
    result = cli_runner.invoke("newsletter", "list", "import", "vip", str(csv))
    assert result.exit_code == 0, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "2 added" in result.stderr and "ignored column(s): 备注, 喜好" in result.stderr
    counts = service(crm).import_list("vip", csv)
    assert counts["added"] == 0 and counts["ignored_columns"] == ["备注", "喜好"]
    assert service(crm).list_size("vip") == 2
