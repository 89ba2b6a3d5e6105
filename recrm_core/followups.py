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

Each runs inside the operation's unit of work. Cheap to import (loaded with every
CRM); the services are imported on first use.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from .hooks import hookimpl

if TYPE_CHECKING:
    from .db import RawSelect, UnitOfWork
    from .models import Customer, Interaction, OwnerChange, TimelineEntry

name = "followups"

#: owner changes whose new owner got the link just now without the link being new (a
#: new link's clock starts at ``first_seen_at``; a claim sets ``owner_since`` itself)
_CLOCK_RESTARTS = ("filled", "reassign", "merge")


@functools.cache
def _statements() -> tuple[RawSelect, RawSelect]:
    """The two reads every interaction with a project pays for, compiled once and run
    on the driver's cursor (``RawSelect``): the oldest open task it fulfils, and an
    earlier visit at the project (is this the first one?). No LIMIT: it would be a
    parameter of its own, and a customer has few of either."""
    from sqlalchemy import bindparam

    from .db import RawSelect
    from .tables import InteractionRow, TaskRow

    tasks = TaskRow.__table__.c
    visits = InteractionRow.__table__.c
    fulfilled = RawSelect(
        select(tasks.id).where(
            tasks.customer_id == bindparam("cid"), tasks.project_id == bindparam("pid"),
            tasks.status == bindparam("open"), tasks.owner_staff == bindparam("staff"),
            tasks.kind == bindparam("kind"))
        .order_by(tasks.due_at, tasks.id))
    earlier = RawSelect(
        select(visits.id).where(
            visits.customer_id == bindparam("cid"), visits.project_id == bindparam("pid"),
            visits.kind == bindparam("visit"), visits.id != bindparam("iid"),
            visits.occurred_at <= bindparam("at", type_=visits.occurred_at.type)))
    return fulfilled, earlier


@hookimpl
def recrm_interaction_logged(uow: UnitOfWork, interaction: Interaction) -> None:
    if interaction.project is None:
        return
    from .projects import known_project_id

    session = uow.session
    cid = interaction.customer_id
    pid = known_project_id(session, interaction.project)
    fulfilled, earlier = _statements()
    conn = session.connection()
    if interaction.staff is not None:
        found = fulfilled.all(conn, {"cid": cid, "pid": pid, "staff": interaction.staff,
                                     "kind": interaction.kind, "open": "open"})
        if found:
            uow.crm.tasks.close_in(uow, found[0][0], interaction.id, interaction.occurred_at)
    if interaction.kind == "visit" and not earlier.all(
            conn, {"cid": cid, "pid": pid, "iid": interaction.id, "visit": "visit",
                   "at": interaction.occurred_at}):
        uow.crm.tasks.after_visit_in(uow, cid, pid, interaction.occurred_at, interaction.staff)


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
