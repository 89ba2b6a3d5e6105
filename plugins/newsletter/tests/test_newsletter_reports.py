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
from recrm_newsletter.tables import RecipientRow
from sqlalchemy import update

from recrm_core import CRM, Actor, InvalidInput
from recrm_core.reports import ReportRequest

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
    assert (spec.plugin, spec.standard) == ("newsletter", ("from", "to"))
    assert "newsletter.sends" not in crm_factory(plugins=[]).reports.specs()
