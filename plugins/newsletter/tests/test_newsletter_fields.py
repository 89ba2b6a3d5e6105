"""Merge fields from other plugins (``recrm_message_fields``): the membership plugin's
tier, and any plugin's fields under its own name."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from newsletter_testkit import SEGMENT, add_customers
from recrm_newsletter import Sender, service

from recrm_core import CRM, Customer, UnitOfWork, hookimpl

CrmFactory = Callable[..., CRM]
HTML = ("<p>{{ club.tier or '业主' }} {{ name }}</p>"
        "<a href='{{ unsubscribe_url }}'>退订</a>")


def test_hook_recrm_message_fields(crm_factory: CrmFactory) -> None:
    class Club:
        name = "club"

        @hookimpl
        def recrm_message_fields(self, uow: UnitOfWork,
                                 customers: list[Customer]) -> dict[int, Any] | None:
            return {c.id: {"tier": "<金卡>"} for c in customers if c.name == "王伟0"}

    console = io.StringIO()
    crm = crm_factory(plugins=["newsletter", Club()], console_stream=console)
    ids = add_customers(crm, 2)
    news = service(crm)
    news.save_segment("prospects", SEGMENT)
    news.create_campaign("launch", channel="email", segment="prospects", subject="s",
                         html=HTML)
    assert "<p>&lt;金卡&gt; 王伟0</p>" in (news.preview("launch", ids[0]).html or "")
    assert "<p>业主 王伟1</p>" in (news.preview("launch", ids[1]).html or "")
    news.schedule("launch")
    assert Sender(crm).run().sent == 2
    assert "&lt;金卡&gt; 王伟0" in console.getvalue() or "金卡" in console.getvalue()


def test_membership_tier_in_a_newsletter(crm_factory: CrmFactory) -> None:
    from recrm_membership import service as membership

    crm = crm_factory(plugins=["newsletter", "membership"], console_stream=io.StringIO())
    ids = add_customers(crm, 2)
    membership(crm).enroll(ids[0])
    news = service(crm)
    news.save_segment("prospects", SEGMENT)
    news.create_campaign("launch", channel="email", segment="prospects", subject="s",
                         html=HTML.replace("club.", "membership."))
    assert "<p>普通 王伟0</p>" in (news.preview("launch", ids[0]).html or "")
    assert "<p>业主 王伟1</p>" in (news.preview("launch", ids[1]).html or "")
