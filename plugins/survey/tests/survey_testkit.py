"""Helpers shared by the survey plugin's tests (a uniquely named module, not a
conftest, because pytest collects tests/, plugins/ and examples/ together)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from recrm_survey import Answer, answer, invite

from recrm_core import CRM, DeliveryResult, Message, hookimpl

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def utc(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)


class Capture:
    """A transport that keeps messages instead of delivering them."""

    name = "capture"

    def __init__(self, on_deliver: Callable[[Message], Any] | None = None) -> None:
        self.messages: list[Message] = []
        self.on_deliver = on_deliver

    @hookimpl
    def recrm_deliver_message(self, message: Message) -> DeliveryResult:
        self.messages.append(message)
        if self.on_deliver is not None:
            self.on_deliver(message)
        return DeliveryResult(transport="capture", detail="kept")

    def invitation_ids(self) -> list[int]:
        return [int(m.headers["X-Recrm-Invitation"]) for m in self.messages]


def customer(crm: CRM, mobile: str, name: str | None = None, **extra: Any) -> int:
    data: dict[str, Any] = {"mobile": mobile, **extra}
    if name:
        data["name"] = name
    return crm.customers.add(data).customer.id


def owner(crm: CRM, mobile: str, project: str = "XL2", unit: str | None = "1-1-101",
          handed_over: dt.datetime | None = None, name: str | None = None) -> int:
    cid = customer(crm, mobile, name)
    crm.customers.set_stage(cid, "owner", project, unit=unit, occurred_at=handed_over)
    return cid


L3_TOP = {"overall": 5, "repurchase": 5, "referral": 5}


def checkin_values(nps: int | str, overall: int, repurchase: int, referral: int,
                   **more: Any) -> dict[str, Any]:
    return {"nps": nps, "overall": overall, "repurchase": repurchase, "referral": referral,
            **more}


def answered(crm: CRM, customer_id: int, at: dt.datetime, values: dict[str, Any],
             project: str | None = "XL2", survey: str = "handover_checkin") -> Answer:
    """A manual invitation due a day before ``at``, answered at ``at``."""
    if project is not None:
        crm.projects.ensure(project)
    inv = invite(crm, customer_id, survey, project=project, due_at=at - dt.timedelta(days=1))
    return answer(crm, inv.id, values, answered_at=at)
