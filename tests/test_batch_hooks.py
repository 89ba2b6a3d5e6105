"""The batch hooks (``recrm_stages_changed``, ``recrm_interactions_logged``), the batch
APIs that fire them (``crm.customers.set_stages``, ``crm.interactions.log_many``) and
how they are dispatched (``crm.hooks.batched``).

A batch API must give what one call per item gives, in order: the same rows, the same
results, the same per-change hook calls. Each comparison below runs the same items on
two twin sets of customers, one by one on the first and in one batch on the second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from recrm_core import (
    CRM,
    Actor,
    Customer,
    CustomerStageChange,
    Interaction,
    InvalidInput,
    OwnerChange,
    PluginError,
    Refused,
    StageChange,
    StageMove,
    UnitOfWork,
    hookimpl,
)
from recrm_core.tables import InteractionRow, ProjectRow, TaskRow, WebhookEventRow
from recrm_core.testing import HookRecorder

Register = Callable[..., str]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def hours(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def twins(crm: CRM, count: int, *, owner: str | None = "wang") -> tuple[list[int], list[int]]:
    """Two sets of ``count`` customers alike (prospects at XL2 owned by ``owner``)."""
    made = [crm.customers.add({"mobile": f"138{n:08d}", "project": "XL2",
                               "owner_staff": owner}).customer.id for n in range(2 * count)]
    return made[:count], made[count:]


def as_twin(customer: Customer, ids: list[int]) -> dict[str, Any]:
    """What two twins share: the customer but its id (as its position in ``ids``),
    mobiles and the times it was written."""
    data = customer.model_dump(exclude={"mobiles", "created_at", "updated_at"})
    data["id"] = ids.index(customer.id)
    for link in data["projects"]:
        del link["first_seen_at"]
    return data


def interactions_of(crm: CRM, ids: list[int]) -> list[tuple[Any, ...]]:
    """Every interaction of ``ids`` (by position in ``ids``), in the order written."""
    where = {cid: n for n, cid in enumerate(ids)}
    with crm.unit_of_work() as uow:
        rows = uow.session.execute(
            select(InteractionRow.customer_id, InteractionRow.kind, InteractionRow.project_id,
                   InteractionRow.staff, InteractionRow.occurred_at, InteractionRow.summary,
                   InteractionRow.data, InteractionRow.minutes)
            .where(InteractionRow.customer_id.in_(ids)).order_by(InteractionRow.id)).all()
    return [(where[r[0]], *r[1:]) for r in rows]


def tasks_of(crm: CRM, ids: list[int]) -> list[tuple[Any, ...]]:
    """Every task of ``ids`` (customer by position), with the position among the
    customer's interactions of the one that closed it, in the order created."""
    where = {cid: n for n, cid in enumerate(ids)}
    with crm.unit_of_work() as uow:
        order = {iid: n for n, iid in enumerate(uow.session.scalars(
            select(InteractionRow.id).where(InteractionRow.customer_id.in_(ids))
            .order_by(InteractionRow.id)))}
        rows = uow.session.execute(
            select(TaskRow.customer_id, TaskRow.kind, TaskRow.owner_staff, TaskRow.due_at,
                   TaskRow.status, TaskRow.rule, TaskRow.interaction_id, TaskRow.closed_at)
            .where(TaskRow.customer_id.in_(ids)).order_by(TaskRow.id)).all()
    return [(where[r[0]], *r[1:6], None if r[6] is None else order[r[6]], r[7]) for r in rows]


# -- the hooks, each changing what recrm does -----------------------------------------------


class DealDesk:
    """Answers every contract of an operation with one statement: a contract at a
    project the plugin has closed for sale refuses the whole operation, the others
    are counted per batch."""

    name = "dealdesk"

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, str | None, str]]] = []

    @hookimpl
    def recrm_stages_changed(self, uow: UnitOfWork,
                             changes: Sequence[CustomerStageChange]) -> None:
        contracts = [c for c in changes if c.change.step == "buyer"]
        if contracts:
            codes = {c.change.project for c in contracts}
            # One read for the whole batch, whatever its size.
            known = set(uow.session.scalars(select(ProjectRow.code).where(
                ProjectRow.code.in_(codes), ProjectRow.name.like("%(closed)%"))))
            if known:
                raise ValueError(f"{sorted(known)[0]} is closed for sale")
        self.batches.append([(c.customer.id, c.change.old_stage, c.change.new_stage)
                             for c in changes])


def test_hook_recrm_stages_changed(crm: CRM, register_plugin: Register) -> None:
    desk = DealDesk()
    register_plugin(desk)
    crm.projects.ensure("YH1", "悦湖一期 (closed)")
    a, b = twins(crm, 1)[0][0], twins(crm, 1)[1][0]
    crm.customers.set_stage(a, "visitor", "XL2")
    assert desk.batches == [[(a, "prospect", "visitor")]]  # a batch of one
    moved = crm.customers.set_stages([
        {"customer_id": a, "stage": "buyer", "project": "XL2", "unit": "3-1201"},
        StageMove(customer_id=b, stage="subscriber", project="XL2"),
        {"customer_id": a, "stage": "owner", "project": "XL2"},
    ])
    assert [c.stage for c in moved] == ["buyer", "subscriber", "owner"]
    assert desk.batches[1:] == [[(a, "visitor", "buyer"), (b, "prospect", "subscriber"),
                                 (a, "buyer", "owner")]]
    # A contract at the closed project refuses the batch: none of its moves stays.
    with pytest.raises(PluginError, match=r"dealdesk.*YH1 is closed for sale") as refused:
        crm.customers.set_stages([{"customer_id": b, "stage": "buyer", "project": "XL2"},
                                  {"customer_id": b, "stage": "buyer", "project": "YH1"}])
    assert refused.value.hook == "recrm_stages_changed"
    assert [(p.project, p.stage) for p in crm.customers.get(b).projects] == [
        ("XL2", "subscriber")]
    assert len(desk.batches) == 2


class VisitCounter:
    """Keeps a per-batch tally of visits, and answers each batch's visits with one
    SMS each (logged by the plugin itself: a batch of its own)."""

    name = "visitcounter"

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, str]]] = []

    @hookimpl
    def recrm_interactions_logged(self, uow: UnitOfWork,
                                  interactions: Sequence[Interaction]) -> None:
        self.batches.append([(i.customer_id, i.kind) for i in interactions])
        visits = [i for i in interactions if i.kind == "visit"]
        if visits:
            uow.crm.interactions.log_many_in(uow, [
                {"customer_id": v.customer_id, "kind": "sms", "summary": "感谢到访"}
                for v in visits])


def test_hook_recrm_interactions_logged(crm: CRM, register_plugin: Register) -> None:
    counter = VisitCounter()
    register_plugin(counter)
    a, b = twins(crm, 2)[0]
    crm.interactions.log(a, {"kind": "call", "project": "XL2"})
    assert counter.batches == [[(a, "call")]]
    crm.interactions.log_many([{"customer_id": a, "kind": "visit", "project": "XL2"},
                               {"customer_id": b, "kind": "call"},
                               {"customer_id": b, "kind": "visit", "project": "XL2"}])
    # The batch, then the plugin's own SMS as a batch of their own.
    assert counter.batches[1:] == [[(a, "visit"), (b, "call"), (b, "visit")],
                                   [(a, "sms"), (b, "sms")]]
    assert [i.kind for i in crm.interactions.list(b)] == ["sms", "visit", "call"]


# -- dispatch -------------------------------------------------------------------------------


class PerChange:
    name = "perchange"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    @hookimpl
    def recrm_stage_changed(self, uow: UnitOfWork, customer: Customer,
                            change: StageChange) -> None:
        self.log.append(f"stage {customer.id} {change.new_stage}")

    @hookimpl
    def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
        self.log.append(f"interaction {interaction.customer_id} {interaction.kind}")


class Batched:
    name = "batched"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    @hookimpl
    def recrm_stages_changed(self, uow: UnitOfWork,
                             changes: Sequence[CustomerStageChange]) -> None:
        self.log.append(f"stages x{len(changes)}")

    @hookimpl
    def recrm_interactions_logged(self, uow: UnitOfWork,
                                  interactions: Sequence[Interaction]) -> None:
        self.log.append(f"interactions x{len(interactions)}")


def test_per_change_hooks_fire_as_each_change_is_made_the_batch_once_at_the_end(
    crm: CRM, register_plugin: Register
) -> None:
    log: list[str] = []
    register_plugin(PerChange(log))
    register_plugin(Batched(log))
    a, b = twins(crm, 1)[0][0], twins(crm, 1)[1][0]
    crm.customers.set_stage(a, "buyer", "XL2")
    # A single set_stage is a batch of one; its contract is an interaction of its own.
    assert log == [f"interaction {a} contract", f"stage {a} buyer", "interactions x1",
                   "stages x1"]
    log.clear()
    crm.interactions.log(b, {"kind": "call"})
    assert log == [f"interaction {b} call", "interactions x1"]
    log.clear()
    with crm.unit_of_work() as uow, crm.hooks.batched(uow):
        crm.customers.set_stage_in(uow, b, "visitor", "XL2")
        with crm.hooks.batched(uow):  # a nested block joins the outer one
            crm.interactions.log_in(uow, b, kind="visit", project="XL2")
            crm.customers.set_stages_in(uow, [{"customer_id": b, "stage": "owner",
                                               "project": "XL2"}])
        assert log == [f"stage {b} visitor", f"interaction {b} visit",
                       f"interaction {b} handover", f"stage {b} owner"]
    assert log[4:] == ["interactions x2", "stages x2"]


def test_a_block_that_raises_delivers_nothing(crm: CRM, register_plugin: Register) -> None:
    log: list[str] = []
    register_plugin(Batched(log))
    a = twins(crm, 1)[0][0]
    with pytest.raises(RuntimeError), crm.unit_of_work() as uow, crm.hooks.batched(uow):
        crm.customers.set_stage_in(uow, a, "buyer", "XL2")
        raise RuntimeError("the caller gave up")
    assert log == []
    assert crm.customers.get(a).stage == "prospect"
    # A refused move in a batch: nothing is delivered and nothing stays.
    crm.customers.set_stage(a, "buyer", "XL2")
    log.clear()
    with pytest.raises(Refused, match="needs --force"):
        crm.customers.set_stages([{"customer_id": a, "stage": "owner", "project": "XL2"},
                                  {"customer_id": a, "stage": "visitor", "project": "XL2"}])
    assert log == [] and crm.customers.get(a).stage == "buyer"


def test_a_plugin_implementing_both_forms_is_refused(register_plugin: Register) -> None:
    class Both:
        name = "both"

        @hookimpl
        def recrm_stage_changed(self, uow: UnitOfWork, customer: Customer,
                                change: StageChange) -> None:
            pass

        @hookimpl
        def recrm_stages_changed(self, uow: UnitOfWork,
                                 changes: Sequence[CustomerStageChange]) -> None:
            pass

    class Renamed:  # the batch form under another name is the batch form all the same
        name = "renamed"

        @hookimpl
        def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
            pass

        @hookimpl(specname="recrm_interactions_logged")
        def all_at_once(self, uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
            pass

    with pytest.raises(PluginError, match=r"both.*'recrm_stage_changed' and "
                                          r"'recrm_stages_changed': implement one"):
        register_plugin(Both())
    with pytest.raises(PluginError, match=r"renamed.*'recrm_interaction_logged' and "
                                          r"'recrm_interactions_logged': implement one"):
        register_plugin(Renamed())


# -- set_stages: what set_stage gives, move by move -------------------------------------------


def test_set_stages_gives_what_set_stage_gives_one_by_one(
    crm: CRM, hook_recorder: HookRecorder
) -> None:
    crm.directory.add_staff({"id": "wang", "name": "王", "role": "sales"})
    one, batch = twins(crm, 3)
    plan = [  # (customer index, stage, project, unit, amount, force, hour)
        (0, "subscriber", "XL2", "1-101", 100_000, False, 1),
        (1, "visitor", "YH1", None, None, False, 2),  # a new link: the consultant owns it
        (0, "buyer", "XL2", "1-101", 2_000_000, False, 3),  # moved twice in one call
        (2, "owner", "XL2", "2-202", None, False, 4),
        (2, "buyer", "XL2", "2-203", 1_500_000, False, 5),  # another unit: stage stays
        (0, "visitor", "XL2", None, None, True, 6),  # forced back
        (1, "visitor", "YH1", None, None, False, 7),  # the same stage: nothing happens
    ]
    actor = Actor(staff_id="wang", role="sales")

    def move(ids: list[int], n: int) -> dict[str, Any]:
        i, stage, project, unit, amount, force, hour = plan[n]
        return {"customer_id": ids[i], "stage": stage, "project": project, "unit": unit,
                "amount": amount, "force": force, "occurred_at": hours(hour)}

    hook_recorder.calls.clear()
    singles = [crm.customers.set_stage(**move(one, n), actor=actor) for n in range(len(plan))]
    single_calls = list(hook_recorder.calls)
    hook_recorder.calls.clear()
    batched = crm.customers.set_stages([move(batch, n) for n in range(len(plan))], actor=actor)
    batch_calls = list(hook_recorder.calls)

    assert [as_twin(c, batch) for c in batched] == [as_twin(c, one) for c in singles]
    assert interactions_of(crm, batch) == interactions_of(crm, one)
    assert [as_twin(crm.customers.get(c), batch) for c in batch] == \
        [as_twin(crm.customers.get(c), one) for c in one]

    def changes(calls: list[Any], ids: list[int]) -> list[dict[str, Any]]:
        where = {cid: n for n, cid in enumerate(ids)}
        return [call.kwargs["change"].model_dump(exclude={"interaction_id"})
                | {"customer_id": where[call.kwargs["change"].customer_id]}
                for call in calls if call.name == "recrm_stage_changed"]

    assert changes(batch_calls, batch) == changes(single_calls, one)
    assert len(changes(batch_calls, batch)) == 6

    def owner_changes(calls: list[Any], ids: list[int]) -> list[list[tuple[Any, ...]]]:
        where = {cid: n for n, cid in enumerate(ids)}
        return [[(where[c.customer_id], c.project, c.old_owner, c.new_owner, c.reason)
                 for c in call.kwargs["changes"]]
                for call in calls if call.name == "recrm_owners_changed"]

    # The new link's owner change: once per set_stage, once for the whole set_stages.
    assert owner_changes(single_calls, one) == [[(1, "YH1", None, "wang", "first_link")]]
    assert owner_changes(batch_calls, batch) == [[(1, "YH1", None, "wang", "first_link")]]


def test_set_stages_tells_every_owner_change_once(crm: CRM, register_plugin: Register) -> None:
    calls: list[list[OwnerChange]] = []

    class Watch:
        @hookimpl
        def recrm_owners_changed(self, uow: UnitOfWork, changes: list[OwnerChange]) -> None:
            calls.append(list(changes))

    register_plugin(Watch(), name="watch")
    ids = twins(crm, 2)[0]
    calls.clear()  # the adds' own
    crm.customers.set_stages(
        [{"customer_id": cid, "stage": "visitor", "project": project}
         for cid in ids for project in ("YH1", "XL3")],
        actor=Actor(staff_id="li", role="sales"))
    assert [[(c.customer_id, c.project, c.new_owner) for c in batch] for batch in calls] == [
        [(ids[0], "YH1", "li"), (ids[0], "XL3", "li"), (ids[1], "YH1", "li"),
         (ids[1], "XL3", "li")]]
    crm.customers.set_stages([{"customer_id": ids[0], "stage": "buyer", "project": "YH1"}])
    assert len(calls) == 1  # no owner changed: the hook is not called


def test_set_stages_names_the_bad_move(crm: CRM) -> None:
    a = twins(crm, 1)[0][0]
    good = {"customer_id": a, "stage": "visitor", "project": "XL2"}
    cases = [
        ({"customer_id": a, "stage": "tenant", "project": "XL2"}, "moves[1].stage"),
        ({"customer_id": a, "stage": "buyer", "project": "XL2", "amount": -1},
         "moves[1].amount"),
        ({"customer_id": a, "stage": "buyer", "project": " "}, "moves[1].project"),
        ({"customer_id": a, "stage": "buyer", "project": "XL2",
          "occurred_at": dt.datetime(2026, 1, 1)}, "moves[1].occurred_at"),
        ({"customer_id": a, "stage": "buyer"}, "moves[1].project"),
        ({"customer_id": a, "stage": "buyer", "project": "XL2", "colour": "red"},
         "moves[1].colour"),
        ("buyer", "moves[1]"),
    ]
    for bad, field in cases:
        with pytest.raises(InvalidInput) as refused:
            crm.customers.set_stages([good, bad])  # type: ignore[list-item]
        assert refused.value.field == field, (bad, refused.value)
    with pytest.raises(InvalidInput, match=r"moves\[0\]\.stage"), \
            crm.unit_of_work() as uow:
        crm.customers.set_stages_in(uow, [{"customer_id": a, "stage": "x", "project": "XL2"}])
    assert crm.customers.get(a).stage == "prospect"  # nothing was moved


def test_a_move_names_the_staff_who_did_the_step(crm: CRM) -> None:
    crm.directory.add_staff({"id": "zhao", "name": "赵", "role": "sales"})
    crm.directory.add_staff({"id": "gone", "name": "钱", "role": "sales"})
    crm.directory.leave("gone")
    a = twins(crm, 1)[0][0]
    manager = Actor(staff_id="li.na", role="manager")
    crm.customers.set_stages([{"customer_id": a, "stage": "subscriber", "project": "XL2",
                               "staff": "zhao"},
                              {"customer_id": a, "stage": "buyer", "project": "XL2"}],
                             actor=manager)
    assert [(i.kind, i.staff) for i in crm.interactions.list(a)] == [
        ("contract", "li.na"), ("subscription", "zhao")]
    crm.customers.set_stage(a, "owner", "XL2", staff="zhao")
    assert crm.interactions.list(a)[0].staff == "zhao"
    # As log refuses it: one who left does no new step.
    with pytest.raises(Refused, match="'gone' has left"):
        crm.customers.set_stages([{"customer_id": a, "stage": "owner", "project": "YH1",
                                   "staff": "gone"}], actor=manager)


# -- log_many: what log gives, entry by entry ---------------------------------------------------


def test_log_many_gives_what_log_gives_one_by_one(
    crm: CRM, hook_recorder: HookRecorder
) -> None:
    one, batch = twins(crm, 2)
    merged_away = crm.customers.add({"mobile": "13900000001"}).customer.id
    crm.customers.merge(one[1], merged_away)
    twin_merged = crm.customers.add({"mobile": "13900000002"}).customer.id
    crm.customers.merge(batch[1], twin_merged)
    entries = [  # (customer, fields); a merged-away id logs on its survivor
        (0, {"kind": "Visit", "project": "XL2", "staff": "wang", "occurred_at": hours(1),
             "minutes": 40, "summary": " 看了样板间 "}),
        (2, {"kind": "call", "channel": "phone", "occurred_at": hours(2)}),
        (0, {"kind": "wechat", "project": "YH1", "data": {"note": "户型图"},
             "occurred_at": hours(3)}),
        (1, {"kind": "email", "occurred_at": hours(4)}),
    ]
    actor = Actor(staff_id="zhou", role="sales")
    singles = [crm.interactions.log([*one, merged_away][i], fields, actor=actor)
               for i, fields in entries]
    single_calls = [c.kwargs["interaction"] for c in hook_recorder.calls
                    if c.name == "recrm_interaction_logged"]
    hook_recorder.calls.clear()
    batched = crm.interactions.log_many(
        [{"customer_id": [*batch, twin_merged][i], **fields} for i, fields in entries],
        actor=actor)
    batch_calls = [c.kwargs["interaction"] for c in hook_recorder.calls
                   if c.name == "recrm_interaction_logged"]
    b_to_a = dict(zip(batch, one, strict=True))

    def seen(items: list[Interaction], mapping: dict[int, int] | None) -> list[dict[str, Any]]:
        return [i.model_dump(exclude={"id"}) | {
            "customer_id": (mapping or {}).get(i.customer_id, i.customer_id)} for i in items]

    assert seen(batched, b_to_a) == seen(singles, None)
    assert seen(batch_calls, b_to_a) == seen(single_calls, None) == seen(singles, None)
    assert [i.customer_id for i in batched] == [batch[0], batch[1], batch[0], batch[1]]
    assert interactions_of(crm, batch) == interactions_of(crm, one)
    [batch_hook] = [c for c in hook_recorder.calls if c.name == "recrm_interactions_logged"]
    assert [i.id for i in batch_hook.kwargs["interactions"]] == [i.id for i in batched]


def test_log_many_shows_a_per_change_hook_the_database_as_of_its_change(
    crm: CRM, register_plugin: Register
) -> None:
    seen: list[int] = []

    class Counter:
        @hookimpl
        def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
            seen.append(len(uow.crm.interactions.list_in(uow.session,
                                                         interaction.customer_id)))

    register_plugin(Counter(), name="counter")
    a = twins(crm, 1)[0][0]
    crm.interactions.log_many([{"customer_id": a, "kind": "call"}] * 3)
    assert seen == [1, 2, 3]  # not three rows at once, then three hooks


def test_log_many_checks_like_log(crm: CRM) -> None:
    a = twins(crm, 1)[0][0]
    crm.directory.add_staff({"id": "wu", "name": "吴", "role": "sales"})
    good = {"customer_id": a, "kind": "call"}
    for bad, field in [({"customer_id": a}, "entries[1].kind"),
                       ({"customer_id": a, "kind": "call", "minutes": 5000},
                        "entries[1].minutes"),
                       ({"kind": "call"}, "entries[1].customer_id"),
                       ({"customer_id": a, "kind": "call", "occurred_at": "2026-01-01T09:00"},
                        "entries[1].occurred_at"),
                       (["call"], "entries[1]")]:
        with pytest.raises(InvalidInput) as refused:
            crm.interactions.log_many([good, bad])  # type: ignore[list-item]
        assert refused.value.field == field, (bad, refused.value)
    with pytest.raises(Exception, match="no customer 999999"):
        crm.interactions.log_many([good, {"customer_id": 999_999, "kind": "call"}])
    assert crm.interactions.list(a) == []  # one unit of work: nothing stayed
    assert crm.interactions.log_many([]) == []


# -- the core's own batch implementations -----------------------------------------------------


class TaskLog:
    """Records each task the hooks report created or done."""

    name = "tasklog"

    def __init__(self) -> None:
        self.created: list[Any] = []
        self.done: list[Any] = []

    @hookimpl
    def recrm_task_created(self, uow: UnitOfWork, task: Any) -> None:
        self.created.append(task)

    @hookimpl
    def recrm_task_done(self, uow: UnitOfWork, task: Any) -> None:
        self.done.append(task)


def test_followups_batch_gives_the_tasks_of_one_by_one(crm: CRM,
                                                       register_plugin: Register) -> None:
    log = TaskLog()
    register_plugin(log)
    for staff_id in ("wang", "li"):
        crm.directory.add_staff({"id": staff_id, "name": staff_id, "role": "sales"})
    one, batch = twins(crm, 3)
    for ids in (one, batch):  # a task planned before: a call by wang closes it
        crm.tasks.add({"customer_id": ids[2], "project": "XL2", "kind": "call",
                       "due_at": hours(30), "staff": "wang"})
        crm.tasks.add({"customer_id": ids[2], "project": "XL2", "kind": "call",
                       "due_at": hours(20), "staff": "wang"})
    entries = [
        # a first visit: the visit rule's call for the owner ...
        (0, {"kind": "visit", "project": "XL2", "staff": "li", "occurred_at": hours(10)}),
        # ... which the owner's call later in the same batch closes
        (0, {"kind": "call", "project": "XL2", "staff": "wang", "occurred_at": hours(12)}),
        # a visit logged first, then one that happened earlier: the first logged one
        # was the first visit when it was logged
        (1, {"kind": "visit", "project": "XL2", "staff": "li", "occurred_at": hours(40)}),
        (1, {"kind": "visit", "project": "XL2", "staff": "li", "occurred_at": hours(5)}),
        # two calls closing the oldest open tasks, one each, in due order
        (2, {"kind": "call", "project": "XL2", "staff": "wang", "occurred_at": hours(1)}),
        (2, {"kind": "call", "project": "XL2", "staff": "wang", "occurred_at": hours(2)}),
        (2, {"kind": "call", "project": "XL2", "staff": "wang", "occurred_at": hours(3)}),
        # a visit at another project, and one by someone who owns no task
        (2, {"kind": "visit", "project": "YH1", "staff": "li", "occurred_at": hours(50)}),
        (1, {"kind": "call", "project": "XL2", "staff": "li", "occurred_at": hours(60)}),
    ]
    for i, fields in entries:
        crm.interactions.log(one[i], fields)
    reported = (log.created[4:], log.done)  # after the four added by hand
    log.created, log.done = [], []
    crm.interactions.log_many([{"customer_id": batch[i], **fields} for i, fields in entries])
    # Each hook fires once per task, in the order one by one gives, with the same task.
    assert len(log.created) == len(log.done) == 3
    assert [t.id for t in log.created] == sorted(t.id for t in log.created)
    for one_by_one, batched in zip(reported, (log.created, log.done), strict=True):
        assert ([(one.index(t.customer_id), t.rule, t.status, t.due_at, t.closed_at)
                 for t in one_by_one]
                == [(batch.index(t.customer_id), t.rule, t.status, t.due_at, t.closed_at)
                    for t in batched])
    expected = tasks_of(crm, one)
    assert tasks_of(crm, batch) == expected
    assert [(t[0], t[4], t[5]) for t in expected] == [
        (2, "done", None), (2, "done", None), (0, "done", "after_visit"),
        (1, "open", "after_visit"), (2, "open", "after_visit")]


def test_webhook_events_of_a_batch_are_those_of_one_by_one(crm: CRM) -> None:
    crm.webhooks.add("https://erp.example.cn/hooks", "stage.changed,interaction.logged")
    one, batch = twins(crm, 2)

    def events() -> list[tuple[int | None, str]]:
        with crm.unit_of_work() as uow:
            return [(cid, kind) for cid, kind in uow.session.execute(
                select(WebhookEventRow.customer_id, WebhookEventRow.type))]

    for cid in one:
        crm.customers.set_stage(cid, "buyer", "XL2")
    single = events()
    crm.customers.set_stages([{"customer_id": cid, "stage": "buyer", "project": "XL2"}
                              for cid in batch])
    b_to_a = dict(zip(batch, one, strict=True))
    batched = [(b_to_a[cid], kind) for cid, kind in events() if cid in b_to_a]
    assert sorted(batched) == sorted(single)
    assert len(single) == 4


def test_list_many_in_gives_what_list_in_gives_for_each(crm: CRM) -> None:
    ids = [crm.customers.add({"name": f"客户{n}", "mobile": f"1380000000{n}"}).customer.id
           for n in range(3)]
    at = dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)
    crm.interactions.log_many([
        {"customer_id": ids[0], "kind": "call", "occurred_at": at},
        {"customer_id": ids[0], "kind": "visit", "project": "P1", "occurred_at": at},
        {"customer_id": ids[1], "kind": "visit", "occurred_at": at - dt.timedelta(days=1)},
        {"customer_id": ids[1], "kind": "visit", "project": "P1", "occurred_at": at},
        {"customer_id": ids[0], "kind": "visit", "occurred_at": at - dt.timedelta(days=2)},
    ])
    with crm.unit_of_work(readonly=True) as uow:
        many = crm.interactions.list_many_in(uow.session, [ids[1], ids[0], ids[2]],
                                             ("visit",))
        assert many == {cid: crm.interactions.list_in(uow.session, cid, kinds=("visit",))
                        for cid in ids}
    assert [len(many[cid]) for cid in ids] == [2, 2, 0]
    assert [i.project for i in many[ids[0]]] == ["P1", None]  # newest first
