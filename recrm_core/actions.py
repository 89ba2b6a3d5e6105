"""The inputs and outcomes of the operations that take more than one record: merge,
stage changes, reassignment, disclosure, case actions, consent, segment queries and
API keys. The SDK's services take their fields as arguments; the HTTP API takes and
returns these very models (``docs/api.md``), so both validate the same way."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, field_validator

from .models import (
    BodyText,
    Channel,
    Code,
    Customer,
    CustomerInteractionIn,
    Purpose,
    Text,
    _Model,
    _Out,
)
from .roles import Role
from .values import Stage, zoned


class MergeIn(_Model):
    """Merge a duplicate into the customer of the URL (the survivor)."""

    duplicate_id: int = Field(ge=1, le=2**31 - 1, description="the customer merged away")


class StageIn(_Model):
    """Move a customer's stage at a project (forward only unless ``force``)."""

    stage: Stage = Field(description="prospect, visitor, subscriber, buyer or owner")
    project: str = Field(min_length=1, max_length=64, description="project code")
    unit: Text = Field(default=None, description="the unit (3-1201) for subscriber, buyer, "
                       "owner")
    amount: int | None = Field(default=None, ge=0, le=10**13,
                               description="amount in CNY for subscriber and buyer")
    force: bool = Field(default=False, description="allow a move backwards")
    occurred_at: dt.datetime | None = Field(
        default=None, description="when it happened (with a UTC offset; default now)")

    @field_validator("occurred_at")
    @classmethod
    def _zoned(cls, v: dt.datetime | None) -> dt.datetime | None:
        return zoned(v, "occurred_at")


#: the most entries one batch request may carry (a bigger batch is split by the caller:
#: one unit of work holds every row of a batch until it commits)
MAX_BATCH = 1000


class StageMoveIn(StageIn):
    """One move of ``POST /v1/customers/stages``: a ``StageIn`` for one customer."""

    customer_id: int = Field(ge=1, le=2**31 - 1, description="the customer")
    staff: Code = Field(default=None, description="who did the step, recorded on its "
                        "interaction (default: the key's staff)")


class StagesIn(_Model):
    """Many stage moves in one unit of work, in order: all of them or none."""

    moves: list[StageMoveIn] = Field(min_length=1, max_length=MAX_BATCH,
                                     description="the moves, applied in this order")


class InteractionEntryIn(CustomerInteractionIn):
    """One entry of ``POST /v1/customers/interactions``: an id as the database stores it."""

    customer_id: int = Field(ge=1, le=2**31 - 1, description="the customer")


class InteractionsIn(_Model):
    """Many customers' interactions in one unit of work, in order: all or none."""

    interactions: list[InteractionEntryIn] = Field(
        min_length=1, max_length=MAX_BATCH, description="the interactions, in this order")


class ReassignIn(_Model):
    """Move every customer of one consultant (at one project, or all) to another."""

    from_staff: str = Field(min_length=1, max_length=64, description="current owner")
    to_staff: str = Field(min_length=1, max_length=64, description="new owner")
    project: str | None = Field(default=None, max_length=64,
                                description="only this project's customers")


class ReassignResult(_Out):
    """How many customer-project links changed owner."""

    moved: int = Field(description="links moved")


class DiscloseIn(_Model):
    """Why full details are needed (kept in the audit log)."""

    reason: str = Field(min_length=1, max_length=500, description="the reason, e.g. a "
                        "ticket reference")


class EraseIn(_Model):
    """An erasure request (PIPL Art. 47): why, and whether only to show the plan."""

    reason: str | None = Field(default=None, max_length=500, description="the request's "
                               "reference, kept in the audit log")
    dry_run: bool = Field(default=False, strict=True, description="do the same work, roll "
                          "it back and report the plan")


class CaseActionIn(_Model):
    """A case lifecycle action: start, resolve, close, reopen, escalate, transfer."""

    note: BodyText = Field(default=None, description="free text kept in the history")
    department: Code = Field(default=None, description="transfer: the new department")
    assignee: Code = Field(default=None, description="transfer: the new assignee")


class ConsentIn(_Model):
    """Grant or withdraw consent for a channel and purpose; the newest record decides."""

    channel: Channel = Field(description="email, sms, phone or wechat")
    purpose: Purpose = Field(default="marketing",
                             description="marketing, surveys or a plugin's purpose")
    granted: bool = Field(description="true to grant, false to withdraw")
    source: Code = Field(default=None, description="where it was given, e.g. mini_program")


class SegmentQuery(_Model):
    """A segment definition (docs/segments.md); none means every active customer."""

    definition: dict[str, Any] | None = Field(
        default=None, description='e.g. {"field": "stage", "op": "eq", "value": "owner"}')


class SegmentCount(_Out):
    """How many active customers match."""

    count: int = Field(description="matching customers")


class CustomerPage(_Out):
    """One page of customers in id order; pass ``next_cursor`` for the next page."""

    items: list[Customer] = Field(description="customers, as the caller may see them")
    next_cursor: str | None = Field(description="cursor of the next page; null at the end")


class ApiKey(_Out):
    """An API key as listed (never its secret)."""

    id: int = Field(description="key id")
    prefix: str = Field(description="the first characters of the key, to recognise it")
    staff_id: str = Field(description="who calls with it")
    role: Role = Field(description="the role its calls have")
    name: str | None = Field(default=None, description="what it is for")
    created_at: dt.datetime = Field(description="when it was created (UTC)")
    revoked_at: dt.datetime | None = Field(default=None, description="when it was revoked")


class ApiKeyCreated(ApiKey):
    """A new key: ``key`` is shown this once and stored only as a hash."""

    key: str = Field(description="the key; send it as `Authorization: Bearer KEY`")
