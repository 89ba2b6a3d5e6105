"""What the task API takes and returns besides ``Task`` (``recrm_core.models``),
and the names of the statuses, rules and roles tasks go by."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple, get_args

from pydantic import Field, field_validator

from ..access import WRITERS
from ..models import BodyText, Code, TaskStatus, _Model, _Out
from ..models.base import scalar
from ..values import required_code, zoned

STATUSES: tuple[str, ...] = get_args(TaskStatus)
#: the rules that create tasks, by the name a task's ``rule`` holds
AFTER_VISIT = "after_visit"
PROSPECT_IDLE = "prospect_idle"
#: who reads tasks (partners never: a task is about a customer's follow-up)
TASK_READERS = (*WRITERS, "analyst")
#: roles that act on anyone's tasks; a consultant (sales) or service acts on their own
TASK_MANAGERS = ("admin", "manager")
#: roles that read (and act on) only their own tasks
OWN_TASKS_ONLY = ("sales", "service")
#: what stands in for an erased task's free text
ERASED_REASON = "(erased)"


class FirstVisit(NamedTuple):
    """A customer's first visit to a project, as the visit rule takes it."""

    customer_id: int
    project_id: int
    at: dt.datetime
    staff: str | None


class TaskIn(_Model):
    """A follow-up task to add (``recrm tasks add``, ``POST /v1/tasks``)."""

    customer_id: int = Field(ge=1, le=2**31 - 1, description="the customer")
    project: str = Field(min_length=1, max_length=64, description="the project's code")
    kind: str = Field(description="call, visit, wechat, sms, email, ... (an interaction "
                      "kind: logging one of it by the owner closes the task)")
    due_at: dt.datetime = Field(description="when it is due (with a UTC offset)")
    staff: Code = Field(default=None, description="the owner; default: whoever adds it")
    note: BodyText = Field(default=None, description="what to do or say")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: Any) -> str:
        return required_code(scalar(v), "task kind", 32).lower()

    @field_validator("due_at")
    @classmethod
    def _zoned(cls, v: dt.datetime) -> dt.datetime:
        zoned(v, "due_at")
        return v.astimezone(dt.UTC)


class TaskDoneIn(_Model):
    """Mark a task done, with the interaction that did it, if any."""

    interaction_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                       description="the customer's interaction that did it")


class TaskCancelIn(_Model):
    """Cancel a task, saying why."""

    reason: str = Field(min_length=1, max_length=500, description="why it is not done")


class TaskSweep(_Out):
    """What a ``tasks sweep`` created, by rule."""

    after_visit: int = Field(description="calls after a first visit")
    prospect_idle: int = Field(description="calls for prospects left without an interaction")


class TaskReportRow(_Out):
    """One consultant's tasks created in the report's period."""

    staff: str = Field(description="the owner")
    created: int = Field(description="tasks created")
    done_on_time: int = Field(description="done by their due time")
    overdue: int = Field(description="done late, or still open past their due time")
    open: int = Field(description="still open")
    cancelled: int = Field(description="cancelled")
