"""What the single operations no longer pay for (issue 21, session 6): a hook nobody
implements is not called while nobody watches, ``cases.open`` reads nothing back when
only the core's webhooks listen, and ``RawWrite`` lays out the driver's arguments
once per plan. Each must leave what callers and hooks see as it was. Every test runs
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, bindparam, select, update

from recrm_core import CRM, Case, Interaction, hookimpl
from recrm_core import rawsql as recrm_rawsql
from recrm_core.cases.rows import _INSERT_HISTORY
from recrm_core.customers.changes import _INSERT_LINK, _RECOMPUTE_STAGE
from recrm_core.db import UnitOfWork
from recrm_core.interactions import _INSERT
from recrm_core.rawsql import RawWrite
from recrm_core.tables import CaseRow, CustomerRow
from recrm_core.testing import HookRecorder

CST = ZoneInfo("Asia/Shanghai")


@contextmanager
def driver_statements() -> Iterator[list[str]]:
    """The SQL of every statement run on the driver's cursor (``RawSelect``,
    ``RawWrite``) inside the block."""
    seen: list[str] = []
    run = recrm_rawsql._on_cursor

    def recording(dbapi_connection: Any, sql: str, args: Any, fetch: bool) -> Any:
        seen.append(" ".join(sql.split()))
        return run(dbapi_connection, sql, args, fetch)

    recrm_rawsql._on_cursor = recording
    try:
        yield seen
    finally:
        recrm_rawsql._on_cursor = run


def _service_desk(crm: CRM) -> int:
    crm.directory.add_department({"code": "客服中心", "name": "客服中心"})
    crm.directory.add_staff({"id": "kf.wang", "name": "王", "role": "service",
                             "department": "客服中心"})
    return crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id


def test_open_reads_nothing_back_when_only_the_core_listens(crm: CRM) -> None:
    cid = _service_desk(crm)
    opened_at = dt.datetime(2024, 5, 6, 9, 30, 15, 123456, tzinfo=CST)
    with driver_statements() as seen:
        case = crm.cases.open({"customer_id": cid, "category": "inquiry", "subject": "咨询",
                               "department": "客服中心", "assignee": "kf.wang",
                               "project": "P1"}, opened_at=opened_at)
    assert not [sql for sql in seen if sql.startswith("SELECT") and "FROM cases" in sql]
    stored = crm.cases.get(case.id)
    # Field by field and as JSON (UTC, as stored and read back).
    assert case.model_dump(mode="json") == stored.model_dump(mode="json")
    assert case.opened_at.utcoffset() == dt.timedelta(0)
    # Built without validation, it is what validation builds.
    assert Case.model_validate(case.model_dump()) == case


def test_open_reads_the_case_back_after_any_other_hook(crm: CRM) -> None:
    cid = _service_desk(crm)

    class Watcher:
        @hookimpl
        def recrm_case_opened(self, uow: UnitOfWork, case: Case) -> None:
            uow.connection.execute(update(CaseRow).where(CaseRow.id == case.id)
                                   .values(subject="改过"))

    crm.pm.register(Watcher(), name="watcher")
    with driver_statements() as seen:
        case = crm.cases.open({"customer_id": cid, "category": "inquiry", "subject": "咨询",
                               "department": "客服中心", "assignee": "kf.wang"})
    assert [sql for sql in seen if sql.startswith("SELECT") and "FROM cases" in sql]
    assert case.subject == "改过"


def test_a_hook_nobody_implements_is_called_only_while_watched(
    crm: CRM, monkeypatch: pytest.MonkeyPatch,
) -> None:
    crm.projects.ensure("P1", "Project one")
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    called: list[str] = []
    call = crm.hooks._call

    def counting(hook_name: str, **kwargs: Any) -> Any:
        called.append(hook_name)
        return call(hook_name, **kwargs)

    monkeypatch.setattr(crm.hooks, "_call", counting)
    crm.interactions.log(cid, {"kind": "call"})
    crm.customers.set_stage(cid, "visitor", "P1")
    assert "recrm_interaction_logged" not in called
    assert "recrm_stage_changed" not in called
    assert "recrm_interactions_logged" in called and "recrm_stages_changed" in called
    # A recorder sees every change, implemented or not.
    recorder = HookRecorder(crm)
    try:
        crm.interactions.log(cid, {"kind": "visit"})
        crm.customers.set_stage(cid, "subscriber", "P1", unit="8-101")
    finally:
        recorder.close()
    assert [c.kwargs["interaction"].kind
            for c in recorder.named("recrm_interaction_logged")] == ["visit", "subscription"]
    assert [c.kwargs["change"].new_stage
            for c in recorder.named("recrm_stage_changed")] == ["subscriber"]
    # Closed, the recorder watches no more; a plugin implementing the hook is called.
    seen: list[Interaction] = []

    class Logged:
        @hookimpl
        def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
            seen.append(interaction)

    crm.pm.register(Logged(), name="logged")
    logged = crm.interactions.log(cid, {"kind": "sms"})
    assert seen == [logged]
    # Built without validation on log's path, it is what validation builds.
    assert Interaction.model_validate(logged.model_dump()) == logged


@pytest.mark.parametrize("raw, params", [
    (_RECOMPUTE_STAGE, {"b_cid": 7, "b_updated_at": dt.datetime(2024, 5, 6, 9, 30,
                                                                   tzinfo=CST)}),
    (_INSERT, {"customer_id": 1, "kind": "call", "channel": None, "project_id": None,
               "staff": None, "occurred_at": dt.datetime(2024, 5, 6, tzinfo=dt.UTC),
               "summary": "回访", "data": {"k": [1, "二"]},
               "created_at": dt.datetime(2024, 5, 6, 1, tzinfo=CST), "minutes": 3}),
    (_INSERT_LINK, {"customer_id": 1, "project_id": 2, "stage": "visitor",
                    "first_seen_at": dt.datetime(2024, 5, 6, tzinfo=dt.UTC),
                    "stage_changed_at": dt.datetime(2024, 5, 6, tzinfo=dt.UTC),
                    "owner_staff": None}),
    (_INSERT_HISTORY, {"case_id": 1, "action": "open", "from_value": None,
                       "to_value": "open", "note": None, "actor_staff": None,
                       "actor_role": None, "at": dt.datetime(2024, 5, 6, tzinfo=CST)}),
])
def test_raw_write_lays_out_what_sqlalchemy_would_bind(
    crm: CRM, raw: RawWrite, params: dict[str, Any],
) -> None:
    dialect = crm.engine.dialect
    plan = raw._plan(dialect, frozenset(params))
    assert plan is not None and plan.slots is not None
    values = plan.compiled.construct_params(params)
    for name, process in plan.processors.items():
        values[name] = process(values[name])
    expected = values if plan.order is None else tuple(values[n] for n in plan.order)
    assert _plain(plan.args(params)) == _plain(expected)


def _plain(args: Any) -> Any:
    """Driver arguments comparable: psycopg's ``Json`` wrapper has no equality."""
    def value(v: Any) -> Any:
        return ("json", v.obj) if type(v).__name__ == "Json" else v

    if isinstance(args, dict):
        return {k: value(v) for k, v in args.items()}
    return tuple(value(v) for v in args)


def test_raw_write_keeps_sqlalchemys_path_for_a_value_computed_each_time(crm: CRM) -> None:
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    table = cast(Table, CustomerRow.__table__)
    names = iter(["甲", "乙"])
    raw = RawWrite(update(table).where(table.c.id == bindparam("b_id")).values(
        name=bindparam("b_name", callable_=lambda: next(names))))
    plan = raw._plan(crm.engine.dialect, frozenset({"b_id"}))
    assert plan is not None and plan.slots is None
    got = []
    for _ in range(2):
        with crm.unit_of_work() as uow:
            raw.run(uow.driver, {"b_id": cid})
            got.append(uow.connection.execute(
                select(table.c.name).where(table.c.id == cid)).scalar_one())
    assert got == ["甲", "乙"]


def test_a_logged_interaction_holds_its_own_data(crm: CRM) -> None:
    from recrm_core.models import InteractionIn

    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    entry = InteractionIn(kind="call", data={"topic": "价格"})
    logged = crm.interactions.log(cid, entry)
    logged.data["topic"] = "改过"
    assert entry.data == {"topic": "价格"}
    assert crm.interactions.list(cid)[0].data == {"topic": "价格"}


class StageEcho:
    """Answers the first batch of stage changes it gets by moving another customer in
    the same unit of work (a plugin reacting to a move with a move of its own)."""

    name = "stageecho"

    def __init__(self, other: int) -> None:
        self.other = other
        self.batches: list[list[tuple[int, str]]] = []

    @hookimpl
    def recrm_stages_changed(self, uow: UnitOfWork, changes: Any) -> None:
        self.batches.append([(c.customer.id, c.change.new_stage) for c in changes])
        if len(self.batches) == 1:
            uow.crm.customers.set_stage_in(uow, self.other, "visitor", "P1")


def test_one_move_is_delivered_to_the_batch_hooks_as_a_batch_of_one(
    crm: CRM, register_plugin: Callable[..., str],
) -> None:
    """A single ``set_stage`` is a batch of one, right after its per-change hook (a
    step's interaction first: its batch hook comes after the stage's per-change hook);
    a move a batch implementation makes itself is a batch of its own, delivered at
    once, never appended to the batch being delivered."""
    crm.projects.ensure("P1", "Project one")
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    other = crm.customers.add({"name": "李四", "mobile": "13812345679"}).customer.id
    echo = StageEcho(other)
    register_plugin(echo)
    recorder = HookRecorder(crm)
    try:
        moved = crm.customers.set_stage(cid, "visitor", "P1")
        assert [c.name for c in recorder.calls if "stage" in c.name] == [
            "recrm_stage_changed", "recrm_stages_changed",
            "recrm_stage_changed", "recrm_stages_changed"]
        first = recorder.named("recrm_stages_changed")[0]
        [item] = first.kwargs["changes"]
        assert item.customer == moved and item.change.new_stage == "visitor"
        assert echo.batches == [[(cid, "visitor")], [(other, "visitor")]]
        assert crm.customers.get(other).stage == "visitor"
        recorder.calls.clear()
        crm.customers.set_stage(cid, "subscriber", "P1", unit="8-101")
        assert [c.name for c in recorder.calls if c.name.endswith("_changed")
                or c.name.startswith("recrm_interaction")] == [
            "recrm_interaction_logged", "recrm_stage_changed", "recrm_interactions_logged",
            "recrm_stages_changed"]
        assert echo.batches[2:] == [[(cid, "subscriber")]]
    finally:
        recorder.close()
