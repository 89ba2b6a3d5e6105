"""The privacy issue's acceptance: a person with data in the core and in every enabled
plugin (interactions naming their mobile, cases, consents, points, survey answers) is
erased, and then every column of every table, read back row by row outside recrm's own
scan, holds none of their values."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from typing import Any

import pytest
from recrm_membership import Membership
from recrm_survey import answer, invite
from sqlalchemy import inspect, select

from recrm_core import CRM, Base

pytestmark = pytest.mark.recrm_plugins("membership", "survey")

MOBILE, OTHER_MOBILE = "13912345678", "13812345678"
ID_CARD = "11010519491231002X"
EMAIL = "wang.wei@example.com"
NAME = "王伟"


def digits(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())


def every_value(crm: CRM) -> list[tuple[str, str, str]]:
    """(table, column, text) of every non-empty value of every table in the database."""
    found = []
    with crm.unit_of_work(readonly=True) as uow:
        conn = uow.session.connection()
        present = set(inspect(conn).get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name not in present:
                continue
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(
                        value, default=str, ensure_ascii=False)
                    found.append((table.name, column, text))
    return found


def traces(crm: CRM) -> list[tuple[str, str, str]]:
    hits = []
    for table, column, text in every_value(crm):
        if MOBILE in digits(text) or OTHER_MOBILE in digits(text) or ID_CARD in text.upper() \
                or EMAIL in text.lower():
            hits.append((table, column, text))
    return hits


def test_an_erased_person_leaves_no_value_in_any_column(crm: CRM) -> None:
    wang = crm.customers.add({"name": NAME, "mobile": MOBILE, "id_card": ID_CARD,
                              "email": EMAIL, "project": "XL2"}).customer.id
    dup = crm.customers.add({"mobile": OTHER_MOBILE, "name": NAME}).customer.id
    crm.customers.merge(wang, dup)
    friend = crm.customers.add({"name": "李娜", "mobile": "13700000000"}).customer.id
    crm.interactions.log(wang, {"kind": "call", "summary": f"看房 {MOBILE[:3]} {MOBILE[3:7]} "
                                f"{MOBILE[7:]}，邮件 {EMAIL}", "project": "XL2"})
    crm.customers.set_stage(wang, "owner", "XL2", unit="3-1201", amount=2_500_000)
    crm.cases.open({"customer_id": wang, "category": "complaint", "subject": f"{NAME}投诉",
                    "description": f"回电 {MOBILE}"})
    crm.consent.grant(wang, "sms", source="售楼处")
    club = Membership(crm)
    club.earn(wang, "event", "2026-open-day", points=300, reason=f"{NAME} 参加开放日")
    club.refer(wang, friend, "XL2")
    crm.customers.set_stage(friend, "buyer", "XL2", unit="5-0101", amount=1_800_000)
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    inv = invite(crm, wang, "handover_checkin", project="XL2", due_at=at - dt.timedelta(days=1))
    answer(crm, inv.id, {"nps": 3, "overall": 2, "repurchase": 2, "referral": 2,
                         "comment": f"我是{NAME}，电话{MOBILE}"}, answered_at=at)
    assert traces(crm), "the setup must leave the person's values to find"
    before = club.report().model_dump(mode="json")

    report = crm.privacy.erase(wang, "PIPL request")
    assert report.verified and report.merged_ids == [dup]
    sources = {s["source"] for s in report.steps}
    assert sources == {"core", "membership", "survey"}

    assert traces(crm) == []
    # the name is gone from every row that was about them
    about: list[Any] = [t for t in every_value(crm) if NAME in t[2]]
    assert about == [], about
    # the friend is untouched, aggregates survive anonymously
    assert crm.customers.get(friend).name == "李娜"
    assert crm.customers.count() == 1
    after = club.report().model_dump(mode="json")
    assert after["points"] == before["points"] and before["points"]["issued"] >= 300
    assert after["referrals"]["made"] == before["referrals"]["made"] == 1
