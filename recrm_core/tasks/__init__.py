"""Follow-up tasks (``crm.tasks``, ``recrm tasks``): planned contacts with a customer at a
project, so no prospect is forgotten.

A task has an owner (a member of staff), a kind (call, visit, wechat, ...), a due time
and a note; it is ``open`` until ``done`` (by the interaction that did it, when known)
or ``cancelled`` (with a reason). Logging an interaction of the task's kind for its
customer and project by its owner closes the oldest open task it fulfils (the core's
own ``recrm_interactions_logged`` implementation, :mod:`recrm_core.followups`).

Two rules create tasks (``[followup]`` settings): after a customer's first visit to a
project, a call within ``after_visit_hours`` (at once, when the visit is logged, and
by the sweep for visits nobody followed up); a prospect with no interaction at a
project for ``prospect_days`` gets a call for its owner. ``recrm tasks sweep`` (for
cron) creates what is due; each rule's task carries a ``rule_key`` the database keeps
unique, so a sweep run twice, or two sweeps at once, create each task once.
"""

from __future__ import annotations

from .rows import erase_tasks, load_tasks
from .schemas import (
    AFTER_VISIT,
    ERASED_REASON,
    OWN_TASKS_ONLY,
    PROSPECT_IDLE,
    STATUSES,
    TASK_MANAGERS,
    TASK_READERS,
    FirstVisit,
    TaskCancelIn,
    TaskDoneIn,
    TaskIn,
    TaskReportRow,
    TaskSweep,
)
from .service import TaskService
from .times import parse_due, period_conditions

__all__ = [
    "AFTER_VISIT",
    "ERASED_REASON",
    "OWN_TASKS_ONLY",
    "PROSPECT_IDLE",
    "STATUSES",
    "TASK_MANAGERS",
    "TASK_READERS",
    "FirstVisit",
    "TaskCancelIn",
    "TaskDoneIn",
    "TaskIn",
    "TaskReportRow",
    "TaskService",
    "TaskSweep",
    "erase_tasks",
    "load_tasks",
    "parse_due",
    "period_conditions",
]
