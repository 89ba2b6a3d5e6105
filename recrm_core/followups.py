"""The sales office's daily work, kept in step by the core's own hooks.

A builtin plugin (``recrm_core.plugins.BUILTIN_PLUGINS``), written like any other:

- an interaction logged by a task's owner, of the task's kind, for its customer and
  project, closes the oldest open task it fulfils (``recrm_task_done`` fires);
- a customer's first visit to a project creates the visit rule's call
  (``followup.after_visit_hours``);
- when a link changes owner, the public pool's clock restarts (``owner_since``) and
  the old owner's open tasks there follow the link to the new owner;
- a merge moves the duplicate's tasks and pool history to the survivor;
- the 360 view's timeline shows the pool's releases and claims.

The interaction rules answer the batch hook (``recrm_interactions_logged``): the
batch's open tasks and earlier visits are read once, then each interaction is handled
in order as if it had been logged alone.

Each runs inside the operation's unit of work. Cheap to import (loaded with every
CRM); the services are imported on first use.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select, update

from .hooks import hookimpl

if TYPE_CHECKING:
    from .db import UnitOfWork
    from .models import Customer, Interaction, OwnerChange, TimelineEntry

name = "followups"

#: owner changes whose new owner got the link just now without the link being new (a
#: new link's clock starts at ``first_seen_at``; a claim sets ``owner_since`` itself)
_CLOCK_RESTARTS = ("filled", "reassign", "merge")


@dataclass
class _OpenTask:
    """An open task as the batch sees it (kept in step as it closes and creates tasks)."""

    id: int
    owner: str
    kind: str
    due_at: dt.datetime


def _of_pairs(uow: UnitOfWork, table: Any, pairs: set[tuple[int, int]], columns: list[Any],
              *where: Any) -> dict[tuple[int, int], list[tuple[Any, ...]]]:
    """``columns`` of the rows of ``table`` (tasks, interactions) matching ``where`` at
    the (customer, project) ``pairs``: one read per few hundred customers."""
    from .db import chunks

    found: dict[tuple[int, int], list[tuple[Any, ...]]] = defaultdict(list)
    pids = sorted({pid for _, pid in pairs})
    for part in chunks(sorted({cid for cid, _ in pairs})):
        for cid, pid, *values in uow.session.execute(
                select(table.customer_id, table.project_id, *columns)
                .where(table.customer_id.in_(part), table.project_id.in_(pids), *where)):
            if (cid, pid) in pairs:
                found[cid, pid].append(tuple(values))
    return found


@hookimpl
def recrm_interactions_logged(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """Each interaction with a project, in order, as if it had been logged alone: it
    closes the oldest open task it fulfils, and a first visit creates the visit
    rule's call. The batch's open tasks and visits are read once, then kept in step
    with what the batch does."""
    at_projects = [i for i in interactions if i.project is not None]
    if not at_projects:
        return
    from .projects import known_project_id
    from .tables import InteractionRow, TaskRow

    pids = {code: known_project_id(uow.session, code)
            for code in dict.fromkeys(cast(str, i.project) for i in at_projects)}
    keyed = [((i.customer_id, pids[cast(str, i.project)]), i) for i in at_projects]
    tasks: dict[tuple[int, int], list[_OpenTask]] = defaultdict(list)
    for key, rows in _of_pairs(
            uow, TaskRow, {key for key, i in keyed if i.staff is not None or i.kind == "visit"},
            [TaskRow.id, TaskRow.owner_staff, TaskRow.kind, TaskRow.due_at],
            TaskRow.status == "open").items():
        tasks[key] = [_OpenTask(*row) for row in rows]
    visits = _of_pairs(uow, InteractionRow, {key for key, i in keyed if i.kind == "visit"},
                       [InteractionRow.id, InteractionRow.occurred_at],
                       InteractionRow.kind == "visit")
    # A visit later in the batch was not written yet when an earlier one was logged.
    position = {i.id: n for n, (_, i) in enumerate(keyed) if i.kind == "visit"}
    for n, (key, interaction) in enumerate(keyed):
        open_tasks = tasks[key]
        if interaction.staff is not None:
            fulfilled = [t for t in open_tasks
                         if t.owner == interaction.staff and t.kind == interaction.kind]
            if fulfilled:
                oldest = min(fulfilled, key=lambda t: (t.due_at, t.id))
                uow.crm.tasks.close_in(uow, oldest.id, interaction.id, interaction.occurred_at)
                open_tasks.remove(oldest)
        if interaction.kind == "visit" and not any(
                iid != interaction.id and at <= interaction.occurred_at
                and position.get(iid, -1) <= n for iid, at in visits[key]):
            created = uow.crm.tasks.after_visit_in(uow, key[0], key[1],
                                                   interaction.occurred_at, interaction.staff)
            if created is not None:
                tasks[key].append(_OpenTask(created.id, created.owner_staff, created.kind,
                                            created.due_at))


@hookimpl
def recrm_owners_changed(uow: UnitOfWork, changes: list[OwnerChange]) -> None:
    moved = [c for c in changes if c.new_owner is not None and c.reason in _CLOCK_RESTARTS]
    if not moved:
        return
    from .db import chunks, utcnow
    from .tables import CustomerProjectRow, ProjectRow, TaskRow

    session = uow.session
    now = utcnow()
    by_project: dict[str, list[OwnerChange]] = defaultdict(list)
    for change in moved:
        by_project[change.project].append(change)
    for code, group in by_project.items():
        pid = session.scalar(select(ProjectRow.id).where(ProjectRow.code == code))
        if pid is None:
            continue
        for part in chunks([c.customer_id for c in group]):
            session.execute(
                update(CustomerProjectRow)
                .where(CustomerProjectRow.project_id == pid,
                       CustomerProjectRow.customer_id.in_(part))
                .values(owner_since=now).execution_options(synchronize_session=False))
        handed: dict[tuple[str, str], list[int]] = defaultdict(list)
        for change in group:
            if change.old_owner is not None and change.new_owner is not None:
                handed[change.old_owner, change.new_owner].append(change.customer_id)
        for (old, new), ids in handed.items():
            for part in chunks(ids):
                session.execute(
                    update(TaskRow)
                    .where(TaskRow.customer_id.in_(part), TaskRow.project_id == pid,
                           TaskRow.owner_staff == old, TaskRow.status == "open")
                    .values(owner_staff=new).execution_options(synchronize_session=False))


@hookimpl
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    from .tables import PoolEventRow, TaskRow

    for table in (TaskRow, PoolEventRow):
        uow.session.execute(
            update(table).where(table.customer_id == duplicate_id)
            .values(customer_id=survivor.id).execution_options(synchronize_session=False))


#: how the pool's history reads on the timeline
_POOL_TITLES = {"idle": "released to the public pool: {staff} did not follow up",
                "to_pool": "released to the public pool from {staff}",
                "staff_left": "released to the public pool: {staff} left",
                "claim": "claimed from the public pool by {staff}"}


@hookimpl
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    """The public pool's history of the customer (the 360 view's open tasks are a
    list of their own)."""
    from .models import TimelineEntry

    return [
        TimelineEntry(at=event.at, kind=f"pool_{event.action}", source="core",
                      title=f"{event.project}: " + _POOL_TITLES.get(
                          event.reason, event.reason).format(staff=event.staff or "-"),
                      data={"project": event.project, "staff": event.staff,
                            "reason": event.reason, "actor": event.actor_staff})
        for event in uow.crm.pool.history_in(uow.session, [customer.id])]
