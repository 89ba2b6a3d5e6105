"""``newsletter.sends``, the plugin's registered report (``recrm_reports``): the
figures of ``newsletter campaign status NAME`` for every send started in the period (one
function), hand-checked; registered only when the plugin is enabled.

(Named ``test_newsletter_reports.py``: every test directory shares one namespace.)
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import pytest
from newsletter_testkit import HTML, SEGMENT, add_customers
from recrm_newsletter import Sender, service
from recrm_newsletter.tables import RecipientRow, SendRow
from sqlalchemy import update

from recrm_core import CRM, Actor, InvalidInput
from recrm_core.reports import ReportRequest
from recrm_core.testing import ApiClients, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("newsletter")


@pytest.fixture
def sent(crm: CRM) -> list[int]:
    """"launch" goes to three consented prospects (a fourth gave no consent); one
    message bounces and one recipient unsubscribes afterwards. "later" is a draft."""
    crm.console_stream = io.StringIO()
    ids = add_customers(crm, 4, consent=lambda i: i != 3)
    news = service(crm)
    news.save_segment("p", SEGMENT)
    news.create_campaign("launch", channel="email", segment="p", subject="开盘", html=HTML)
    news.create_campaign("later", channel="email", segment="p", subject="下期", html=HTML)
    news.schedule("launch")
    Sender(crm).run()
    with crm.unit_of_work() as uow:  # a bounce traced back to the message to ids[1]
        uow.session.execute(update(RecipientRow).where(RecipientRow.customer_id == ids[1])
                            .values(bounced=True))
    crm.consent.withdraw(ids[0], "email", "marketing", source="call")
    return ids


def test_one_line_per_started_send_with_the_reports_figures(crm: CRM, sent: list[int]) -> None:
    report = crm.reports.run("newsletter.sends", ReportRequest())
    [line] = report.rows
    today = dt.datetime.now(crm.config.zone).date()
    assert (line["send"], line["channel"], line["state"], line["started"]) == (
        "launch", "email", "sent", today)
    # 3 sent, 1 of them bounced: 2 delivered; 1 unsubscribed since
    assert (line["sent"], line["delivered"], line["bounced"], line["unsubscribed"],
            line["failed"], line["pending"]) == (3, 2, 1, 1, 0, 0)
    own = service(crm).report("launch")
    assert (line["audience"], line["skipped"]) == (own.audience, sum(own.skipped.values()))
    assert (own.sent, own.bounced, own.unsubscribed) == (3, 1, 1)
    assert crm.reports.run("newsletter.sends", ReportRequest(start=today, end=today)).rows \
        == report.rows
    assert crm.reports.run("newsletter.sends", ReportRequest(
        end=today - dt.timedelta(days=1))).rows == []
    assert crm.reports.run("newsletter.sends", ReportRequest(
        actor=Actor(staff_id="an", role="analyst"))).rows == report.rows
    with pytest.raises(InvalidInput, match="before it starts"):
        crm.reports.run("newsletter.sends", ReportRequest(start=today,
                                                          end=today - dt.timedelta(days=1)))
    with pytest.raises(InvalidInput, match="takes no project"):
        crm.reports.run("newsletter.sends", ReportRequest(project="XL2"))


def test_registered_only_when_the_plugin_is_enabled(
        crm: CRM, crm_factory: Callable[..., CRM]) -> None:
    spec = crm.reports.specs()["newsletter.sends"]
    assert (spec.plugin, spec.standard) == ("newsletter", ("from", "to", "by"))
    assert "newsletter.sends" not in crm_factory(plugins=[]).reports.specs()


def test_by_labels_each_send_with_the_period_of_its_local_start_day(
        crm: CRM, sent: list[int], cli_runner: RecrmCliRunner,
        api_client: ApiClients) -> None:
    """``--by``, as the other reports spell it: "launch" started at 2026-03-31 17:00
    UTC, which is 1 April in Shanghai (the CRM's zone), so April and Q2, not March."""
    assert str(crm.config.zone) == "Asia/Shanghai"
    news = service(crm)
    news.schedule("later")
    Sender(crm).run()
    with crm.unit_of_work() as uow:
        for name, started in (("launch", dt.datetime(2026, 3, 31, 17, tzinfo=dt.UTC)),
                              ("later", dt.datetime(2026, 12, 7, 2, tzinfo=dt.UTC))):
            uow.session.execute(update(SendRow).where(SendRow.name == name)
                                .values(started_at=started))
    labels = {by: [(r["send"], r["period"]) for r in crm.reports.run(
        "newsletter.sends", ReportRequest(by=by)).rows]
        for by in ("month", "quarter", "year", "all")}
    assert labels == {
        "month": [("launch", "2026-04"), ("later", "2026-12")],
        "quarter": [("launch", "2026-Q2"), ("later", "2026-Q4")],
        "year": [("launch", "2026"), ("later", "2026")],
        "all": [("launch", "all"), ("later", "all")],
    }
    done = cli_runner.invoke("report", "newsletter.sends", "--by", "quarter",
                             "--from", "2026-04-01", "--json")
    assert done.exit_code == 0, done.stderr
    document = done.json()
    assert document["parameters"] == {"by": "quarter", "from": "2026-04-01"}
    assert [(r["send"], r["period"], r["started"]) for r in document["rows"]] == [
        ("launch", "2026-Q2", "2026-04-01"), ("later", "2026-Q4", "2026-12-07")]
    refused = cli_runner.invoke("report", "newsletter.sends", "--by", "week")
    assert refused.exit_code == 2 and "week" in refused.stderr
    got = api_client("analyst").get("/v1/reports/newsletter.sends", params={"by": "month"})
    assert got.status_code == 200, got.text
    assert [(r["send"], r["period"]) for r in got.json()["rows"]] == labels["month"]
