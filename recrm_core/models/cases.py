"""Service cases: the case to open, the case with its SLA, and its history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from .. import identity, values
from .base import BodyText, CaseStatus, Code, IntakeChannel, Priority, _Model, _Out, scalar


class CaseIn(_Model):
    """A new service case. Lengths match the ``cases`` columns, so a bad value is a
    validation error naming the field rather than a database error."""

    customer_id: int = Field(description="the customer the case is about")
    category: str = Field(
        description="complaint, repair, inquiry ... (lower-cased, at most 32 characters)"
    )
    subject: str = Field(description="one line (at most 200 characters)")
    priority: Annotated[Priority,
                        BeforeValidator(lambda v: identity.clean(scalar(v)).lower())] = Field(
        default="normal", description="low, normal, high or urgent; decides the SLA"
    )
    project: str | None = Field(default=None, description="project code, if the case concerns one")
    department: Code = Field(default=None, description="department handling it")
    assignee: Code = Field(default=None, description="staff member handling it; without "
                           "one the case is routed by the `[[routing]]` rules")
    description: BodyText = Field(default=None, description="free text")
    channel: Annotated[IntakeChannel,
                       BeforeValidator(lambda v: identity.clean(scalar(v)).lower())] = (
        Field(default="other", description="how it came in: hotline, wechat, mailbox, forum, "
              "chairman, property_desk, walk_in, survey or other"))

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, v: Any) -> str:
        return values.required_code(scalar(v), "case category", 32).lower()

    @field_validator("subject", mode="before")
    @classmethod
    def _subject(cls, v: Any) -> str:
        return values.required_text(scalar(v), "case subject", 200)


class CaseHistoryEntry(_Out):
    """One step in a service case's history (a status change, a hand-over ...)."""

    action: str = Field(
        description="open, start, resolve, close, reopen, transfer, escalate, priority, "
        "route, notify or incident"
    )
    from_value: str | None = Field(
        default=None, description="value before (status, department or assignee)"
    )
    to_value: str | None = Field(default=None, description="value after")
    note: str | None = Field(default=None, description="free text given with the action")
    actor_staff: str | None = Field(default=None, description="who did it")
    actor_role: str | None = Field(default=None, description="their role")
    at: dt.datetime = Field(description="when (UTC)")


class Case(_Out):
    """A service case (complaint, repair, inquiry) with its SLA and history."""

    id: int = Field(description="case id")
    customer_id: int = Field(description="the customer's id")
    project: str | None = Field(default=None, description="project code, if any")
    category: str = Field(description="complaint, repair, inquiry ...")
    priority: Priority = Field(description="low, normal, high or urgent")
    status: CaseStatus = Field(description="open, in_progress, resolved, closed or reopened")
    subject: str = Field(description="one line")
    description: str | None = Field(default=None, description="free text")
    department: str | None = Field(default=None, description="department handling it")
    assignee: str | None = Field(default=None, description="staff member handling it")
    escalation_level: int = Field(
        default=0, description="its escalation level: the index in `[[sla.levels]]` (0 first)")
    level: str | None = Field(default=None, description="the level's name, e.g. head office")
    channel: IntakeChannel = Field(default="other", description="how it came in")
    incident_id: int | None = Field(default=None, description="the incident it belongs to")
    sla_due_at: dt.datetime = Field(description="when it must be resolved (UTC)")
    overdue: bool = Field(default=False, description="still active and past `sla_due_at`")
    opened_at: dt.datetime = Field(description="when it was opened (UTC)")
    resolved_at: dt.datetime | None = Field(
        default=None, description="when it was last resolved (UTC)"
    )
    closed_at: dt.datetime | None = Field(default=None, description="when it was closed (UTC)")
    history: list[CaseHistoryEntry] = Field(
        default_factory=list,
        description="every status change, hand-over and escalation, oldest first",
    )
