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
batch's open tasks and earlier visits are read once, each interaction is handled in
order as if it had been logged alone, and the batch's new tasks and closures are
written with one statement each.

Each runs inside the operation's unit of work. Cheap to import (loaded with every
CRM); the services are imported on first use.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Select, select, update

from .hooks import hookimpl

if TYPE_CHECKING:
    from .db import UnitOfWork
    from .models import Customer, Interaction, OwnerChange, TimelineEntry
    from .rawsql import RawSelect

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


@functools.cache
def _reads() -> dict[str, tuple[RawSelect, Select[Any], dict[str, str]]]:
    """The batch's two reads at (customer, project) pairs, built once: the open tasks
    and the visits. Each for one pair (a single ``log``, the common case: a prebuilt
    statement on the driver's cursor, see ``RawSelect``) and with IN lists for many."""
    from sqlalchemy import bindparam

    from .rawsql import RawSelect
    from .tables import InteractionRow, TaskRow

    def reads(table: Any, columns: list[Any], condition: Any, params: dict[str, str]
              ) -> tuple[RawSelect, Select[Any], dict[str, str]]:
        c = table.__table__.c
        base = select(c.customer_id, c.project_id, *columns).where(condition)
        one = base.where(c.customer_id == bindparam("cid"), c.project_id == bindparam("pid"))
        many = base.where(c.customer_id.in_(bindparam("cids", expanding=True)),
                          c.project_id.in_(bindparam("pids", expanding=True)))
        return RawSelect(one), many, params

    tasks = TaskRow.__table__.c
    visits = InteractionRow.__table__.c
    return {
        "tasks": reads(TaskRow, [tasks.id, tasks.owner_staff, tasks.kind, tasks.due_at],
                       tasks.status == bindparam("status"), {"status": "open"}),
        "visits": reads(InteractionRow, [visits.id, visits.occurred_at],
                        visits.kind == bindparam("kind"), {"kind": "visit"}),
    }


def _of_pairs(uow: UnitOfWork, read: str, pairs: set[tuple[int, int]]
              ) -> dict[tuple[int, int], list[tuple[Any, ...]]]:
    """The rows of ``_reads()[read]`` at the (customer, project) ``pairs``: one read
    per few hundred customers."""
    from .db import chunks

    found: dict[tuple[int, int], list[tuple[Any, ...]]] = defaultdict(list)
    if not pairs:
        return found
    one, many, params = _reads()[read]
    conn = uow.driver
    if len(pairs) == 1:
        [(cid, pid)] = pairs
        rows: Iterable[Any] = one.all(conn, {"cid": cid, "pid": pid, **params})
    else:
        pids = sorted({pid for _, pid in pairs})
        rows = [row for part in chunks(sorted({cid for cid, _ in pairs}))
                for row in conn.execute(many, {"cids": part, "pids": pids, **params})]
    for cid, pid, *values in rows:
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
    from .tasks import FirstVisit

    pids = {code: known_project_id(uow.driver, code)
            for code in dict.fromkeys(cast(str, i.project) for i in at_projects)}
    keyed = [((i.customer_id, pids[cast(str, i.project)]), i) for i in at_projects]
    tasks: dict[tuple[int, int], list[_OpenTask]] = defaultdict(list)
    for key, rows in _of_pairs(uow, "tasks", {key for key, i in keyed
                                             if i.staff is not None or i.kind == "visit"}
                               ).items():
        tasks[key] = [_OpenTask(*row) for row in rows]
    visits = _of_pairs(uow, "visits", {key for key, i in keyed if i.kind == "visit"})
    # A visit later in the batch was not written yet when an earlier one was logged.
    position = {i.id: n for n, (_, i) in enumerate(keyed) if i.kind == "visit"}
    first_visits = {
        n: FirstVisit(key[0], key[1], interaction.occurred_at, interaction.staff)
        for n, (key, interaction) in enumerate(keyed)
        if interaction.kind == "visit" and not any(
            iid != interaction.id and at <= interaction.occurred_at
            and position.get(iid, -1) <= n for iid, at in visits[key])}
    # Whether a visit creates a task does not depend on the batch's closures, so the
    # new tasks are written first, in one statement; a task becomes closable by the
    # interactions after the visit that created it, as if they were logged one by one.
    created = dict(zip(first_visits, uow.crm.tasks.after_visit_many_in(
        uow, list(first_visits.values())), strict=True))
    closes: list[tuple[int, int | None, dt.datetime]] = []
    for n, (key, interaction) in enumerate(keyed):
        open_tasks = tasks[key]
        if interaction.staff is not None:
            fulfilled = [t for t in open_tasks
                         if t.owner == interaction.staff and t.kind == interaction.kind]
            if fulfilled:
                oldest = min(fulfilled, key=lambda t: (t.due_at, t.id))
                closes.append((oldest.id, interaction.id, interaction.occurred_at))
                open_tasks.remove(oldest)
        new = created.get(n)
        if new is not None:
            open_tasks.append(_OpenTask(new.id, new.owner_staff, new.kind, new.due_at))
    uow.crm.tasks.close_many_in(uow, closes)


@hookimpl
def recrm_owners_changed(uow: UnitOfWork, changes: Sequence[OwnerChange]) -> None:
    # An import batch's changes tell their reasons unbuilt (nearly all first links,
    # whose clock starts with the link): the models are built only if one restarts it.
    reasons = getattr(changes, "reasons", None)
    if reasons is not None and reasons.isdisjoint(_CLOCK_RESTARTS):
        return
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
