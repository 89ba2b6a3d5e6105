"""The newsletter part of ``recrm demo``: the owners' magazine and a launch campaign.

Twenty owners with an email address subscribe to the magazine (the ``newsletter``
consent purpose) and issue 12 of 《兴隆大家庭》 goes to the saved segment "owners"; a
launch SMS goes to a static list of twenty prospects (imported from a CSV file by
mobile), of whom only those the core's demo gave SMS marketing consent get it. Both
are sent through the file transport into ``recrm-newsletter-demo/`` beside the demo's
database (``recrm_core.demo.demo_path``), and the section
prints their reports. Small on purpose: the section adds a fraction of a second.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import shutil
from pathlib import Path

from sqlalchemy import select

from recrm_core import CRM, DemoSection
from recrm_core.demo import demo_path
from recrm_core.tables import CustomerRow, IdentityRow

from .outbox import Sender
from .service import Newsletter
from .settings import settings
from .transports import write_file

MAGAZINE = "XLJ"
#: where the section's messages go, beside the demo's database
DIRECTORY = "recrm-newsletter-demo"
SAMPLE = 20
HTML = ("<p>{{ name }}，您好！</p><p>《兴隆大家庭》第 {{ issue }} 期：社区春季活动、"
        "物业服务升级与二期交房进展。</p><p><a href=\"{{ unsubscribe_url }}\">退订</a></p>")
SMS = "{{ name }}，星珑湾三期今日开盘，首付分期、老业主推荐再享优惠，详询销售中心。回T退订"


def seed_demo(crm: CRM, rng: random.Random, customer_ids: list[int],
              anchor: dt.datetime) -> DemoSection:
    news = Newsletter(crm)
    owners = {"field": "stage", "op": "eq", "value": "owner"}
    news.save_segment("owners", owners)
    with crm.unit_of_work(readonly=True) as uow:
        with_email = list(uow.session.scalars(
            select(CustomerRow.id).where(crm.segments.compile(owners),
                                         CustomerRow.email.is_not(None))
            .order_by(CustomerRow.id)))
        mobiles = list(uow.session.scalars(
            select(IdentityRow.value).join(CustomerRow, CustomerRow.id == IdentityRow.customer_id)
            .where(crm.segments.compile({"field": "stage", "op": "eq", "value": "prospect"}),
                   IdentityRow.kind == "mobile").order_by(IdentityRow.id)))
    for cid in rng.sample(with_email, min(SAMPLE, len(with_email))):
        crm.consent.grant(cid, "email", "newsletter", source="demo")
    # One fixed place per database, emptied first: the summary (which names it) stays
    # the same run after run for a seed.
    directory = Path(demo_path(crm, DIRECTORY))
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    csv = directory / "launch-list.csv"
    csv.write_text("mobile\n" + "\n".join(rng.sample(mobiles, min(SAMPLE, len(mobiles))))
                   + "\n", encoding="utf-8")
    news.import_list("launch-vip", csv)
    news.create_publication(MAGAZINE, "兴隆大家庭", "email")
    issue = news.create_issue(MAGAZINE, 12, segment="owners", subject="《兴隆大家庭》第 12 期",
                              html=HTML)
    news.create_campaign("phase3-launch", channel="sms", list_name="launch-vip", text=SMS)
    sender = Sender(crm, deliver=functools.partial(write_file, settings(crm), directory))
    rows: list[tuple[str, str]] = []
    # Today at 10:00 local time: outside the SMS quiet hours whenever the demo runs.
    at = anchor + dt.timedelta(hours=10)
    for name in (issue.name, "phase3-launch"):
        news.schedule(name, at=at)
        sender.run(only=name, now=at)
        r = news.report(name)
        skipped = ", ".join(f"{k} {v}" for k, v in r.skipped.items()) or "none"
        rows.append((name, f"{r.send.state}: audience {r.audience}, sent {r.sent}, "
                           f"failed {r.failed}, skipped {skipped}"))
    written = sum(1 for f in directory.iterdir() if f.suffix in (".eml", ".json"))
    rows.append(("files", f"{written} messages in {directory}"))
    return DemoSection(title="newsletter: the owners' magazine and a launch SMS", rows=rows)

