"""What happens to a customer over time: interactions, stage and owner changes,
follow-up tasks, and the 360 view's timeline entries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from .. import values
from ..values import Stage
from .base import BodyText, Code, _Model, _Out, scalar


class InteractionIn(_Model):
    """A touch to log on a customer's timeline (``crm.interactions.log``)."""

    kind: str = Field(
        description="call, visit, sms, wechat, email, contract, handover, event ... (lower-cased)",
    )
    channel: Annotated[str | None,
                       BeforeValidator(lambda v: values.optional_code(scalar(v), 32))] = Field(
        default=None, description="how it happened, if not implied by `kind`"
    )
    project: str | None = Field(default=None, description="project code it belongs to, if any")
    staff: Code = Field(default=None, description="staff member involved")
    occurred_at: dt.datetime | None = Field(
        default=None, description="when it happened, with a time zone (default: now)"
    )
    summary: BodyText = Field(default=None, description="free text")
    data: dict[str, Any] = Field(
        default_factory=dict, description="structured details (JSON object)"
    )
    minutes: int | None = Field(
        default=None, ge=0, le=values.MAX_MINUTES,
        description="how long the contact took, in minutes (the staff report's contact "
        "hours); at most a day")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: Any) -> str:
        return values.required_code(scalar(v), "interaction kind", 32).lower()

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        return values.zoned(v, "occurred_at")

    @field_validator("data")
    @classmethod
    def _finite(cls, v: dict[str, Any]) -> dict[str, Any]:
        return values.finite_json(v, "data")  # type: ignore[no-any-return]


class Interaction(_Out):
    """One touch on a customer's timeline; passed to ``recrm_interaction_logged``."""

    id: int = Field(description="interaction id")
    customer_id: int = Field(description="the customer's id")
    kind: str = Field(
        description="call, visit, sms, wechat, email, subscription, contract, handover, event ..."
    )
    channel: str | None = Field(default=None, description="how it happened, if recorded")
    project: str | None = Field(default=None, description="project code, if any")
    staff: str | None = Field(default=None, description="staff member involved, if any")
    occurred_at: dt.datetime = Field(description="when it happened (UTC)")
    summary: str | None = Field(default=None, description="free text")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="structured details; a stage step's `unit` and `amount` are here",
    )
    minutes: int | None = Field(default=None,
                                description="how long the contact took, in minutes, if told")


class StageChange(_Out):
    """What a stage change carried; passed to ``recrm_stage_changed``."""

    customer_id: int = Field(description="the customer's id")
    project: str = Field(description="project code")
    old_stage: Stage | None = Field(
        description="stage before; `None` when the customer is first linked to the project",
    )
    new_stage: Stage = Field(description="stage after the change")
    step: Stage | None = Field(
        default=None,
        description="the step recorded: `new_stage` when the stage moves; for another unit "
        "at a stage the customer already reached (a second contract while `owner`), the step "
        "(`buyer`) while `old_stage == new_stage`",
    )
    unit: str | None = Field(
        default=None, description="the unit (e.g. 3-1201) of a subscription, contract or handover"
    )
    amount: int | None = Field(
        default=None, description="the amount in CNY of a subscription or contract"
    )
    forced: bool = Field(
        default=False, description="moved with `force=True` (allowed to skip or go back)"
    )
    interaction_id: int | None = Field(
        default=None, description="the timeline entry recording the step, if one was logged"
    )
    #: when the change happened (the contract date, the handover date, ...)
    occurred_at: dt.datetime | None = Field(
        default=None,
        description="when the change happened (the contract date, the handover date, ...)",
    )


class StageMove(_Model):
    """One move of ``crm.customers.set_stages``: what ``set_stage`` takes, for one
    customer (checked as ``set_stage`` checks its arguments)."""

    customer_id: int = Field(description="the customer")
    stage: str = Field(description="the stage to move to (prospect, visitor, subscriber, "
                       "buyer, owner)")
    project: str = Field(description="the project's code")
    unit: str | None = Field(
        default=None, description="the unit of a subscription, contract or handover")
    amount: int | None = Field(
        default=None, description="the amount in CNY of a subscription or contract")
    force: bool = Field(default=False, description="allow skipping or going back")
    occurred_at: dt.datetime | None = Field(
        default=None, description="when it happened, with a time zone (default: now)")
    staff: Code = Field(default=None, description="who did the step, recorded on its "
                        "interaction (a sales assistant entering the consultants' contracts); "
                        "default: the actor")


class CustomerInteractionIn(InteractionIn):
    """One entry of ``crm.interactions.log_many``: the customer and what
    ``crm.interactions.log`` takes for them."""

    customer_id: int = Field(description="the customer")


#: why an owner changed: a new link with an owner, an empty owner filled by later
#: data (an import row, an add), a bulk reassign, a merge moving a link, and the
#: public pool (released by nobody following up, claimed by a consultant)
OwnerChangeReason = Literal["first_link", "filled", "reassign", "merge", "released", "claimed"]


class OwnerChange(_Out):
    """One customer's owning consultant at one project changed; a list of these is
    passed to ``recrm_owners_changed``."""

    customer_id: int = Field(description="the customer (the survivor, after a merge)")
    project: str = Field(description="the project's code")
    old_owner: str | None = Field(description="the previous owner staff id; None when "
                                  "the link had no owner or did not exist")
    new_owner: str | None = Field(description="the new owner staff id; None when released")
    reason: OwnerChangeReason = Field(description="why it changed")


class TimelineEntry(_Out):
    """One line of the 360 view's timeline; plugins add their own."""

    at: dt.datetime = Field(
        description="when it happened (UTC); the timeline is ordered newest first"
    )
    kind: str = Field(
        description="what happened (an interaction kind, or a plugin's own, e.g. hot_lead)"
    )
    title: str = Field(description="one line to show")
    source: str = Field(
        default="core", description="`core`, or the name of the plugin that added the entry"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="structured details")


TaskStatus = Literal["open", "done", "cancelled"]


class Task(_Out):
    """A follow-up task; passed to ``recrm_task_created`` and ``recrm_task_done``."""

    id: int = Field(description="task id")
    customer_id: int = Field(description="the customer")
    project: str = Field(description="the project's code")
    kind: str = Field(description="call, visit, wechat, ...")
    owner_staff: str = Field(description="who is to do it")
    due_at: dt.datetime = Field(description="when it is due (UTC)")
    note: str | None = Field(default=None, description="free text")
    status: TaskStatus = Field(description="open, done or cancelled")
    rule: str | None = Field(default=None, description="the rule that created it "
                             "(`after_visit`, `prospect_idle`); none: added by hand")
    interaction_id: int | None = Field(default=None, description="the interaction that did it")
    cancel_reason: str | None = Field(default=None, description="why it was cancelled")
    created_by: str | None = Field(default=None, description="who added it (none: a rule)")
    created_at: dt.datetime = Field(description="when it was added (UTC)")
    closed_at: dt.datetime | None = Field(default=None, description="when it was done or "
                                          "cancelled (done: when the interaction happened)")
    overdue: bool = Field(default=False, description="open and past its due time")
