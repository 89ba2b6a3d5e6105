"""What the importing process builds only on demand, or by C iterators: the owners
hook's changes of an import batch (built on first access, their reasons known
unbuilt), the SQLite bind of a batch's dates, the runs of created ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Date, DateTime, Integer, select
from sqlalchemy.dialects import postgresql, sqlite

from recrm_core import CRM, OwnerChange, hookimpl
from recrm_core.importing.hookrecords import _LazyChanges
from recrm_core.importing.progress import _Run
from recrm_core.importing.writes import _column_processor
from recrm_core.models import ImportResult
from recrm_core.tables import CustomerProjectRow

M1, M2, M3 = "13812345678", "13912345678", "13712345678"


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class Keeper:
    """Keeps each batch's owner changes without reading them."""

    def __init__(self) -> None:
        self.kept: list[Sequence[OwnerChange]] = []

    @hookimpl
    def recrm_owners_changed(self, changes: Sequence[OwnerChange]) -> None:
        self.kept.append(changes)


def owner_since(crm: CRM) -> dict[tuple[int, str | None], dt.datetime | None]:
    with crm.unit_of_work(readonly=True) as uow:
        return {(cid, owner): since for cid, owner, since in uow.session.execute(select(
            CustomerProjectRow.customer_id, CustomerProjectRow.owner_staff,
            CustomerProjectRow.owner_since))}


def test_first_links_are_told_unbuilt_and_the_follow_ups_leave_them_so(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    keeper = Keeper()
    register_plugin(keeper)
    crm.importer.import_csv(write(
        tmp_path, f"mobile,project,owner_staff\n{M1},XL1,zhang\n{M2},XL1,li\n{M3},XL1,\n"))
    (changes,) = keeper.kept
    assert isinstance(changes, _LazyChanges)
    assert len(changes) == 2 and changes.reasons == frozenset({"first_link"})
    # The core's follow-ups implement the hook too: a first link's clock starts with
    # the link, so they had nothing to do and built nothing.
    assert changes._build is not None
    ids = {m: crm.customers.find(mobile=m)[0].id for m in (M1, M2)}
    expected = [OwnerChange(customer_id=ids[M1], project="XL1", old_owner=None,
                            new_owner="zhang", reason="first_link"),
                OwnerChange(customer_id=ids[M2], project="XL1", old_owner=None,
                            new_owner="li", reason="first_link")]
    assert changes == expected and list(changes) == expected and changes[1] == expected[1]
    assert all(since is None for since in owner_since(crm).values())


def test_an_owner_filled_by_an_import_restarts_the_clock(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    keeper = Keeper()
    register_plugin(keeper)
    crm.importer.import_csv(write(tmp_path, f"mobile,project\n{M1},XL1\n{M2},XL1\n"))
    assert keeper.kept == []  # links without owners change no owner
    crm.importer.import_csv(write(
        tmp_path, f"mobile,project,owner_staff\n{M1},XL1,zhang\n{M3},XL1,li\n", "b.csv"))
    (changes,) = keeper.kept
    assert changes.reasons == frozenset({"filled", "first_link"})  # type: ignore[attr-defined]
    # the follow-ups read them: the filled owner's clock starts now, not the new link's
    assert changes._build is None  # type: ignore[attr-defined]
    ids = {m: crm.customers.find(mobile=m)[0].id for m in (M1, M2, M3)}
    since = owner_since(crm)
    assert since[(ids[M1], "zhang")] is not None
    assert since[(ids[M2], None)] is None and since[(ids[M3], "li")] is None
    assert [(c.customer_id, c.new_owner, c.reason) for c in changes] == [
        (ids[M1], "zhang", "filled"), (ids[M3], "li", "first_link")]


@pytest.mark.parametrize("value", [
    None, dt.date(1, 1, 1), dt.date(999, 12, 31), dt.date(1987, 6, 5), dt.date(9999, 12, 31),
    dt.datetime(2001, 2, 3, 4, 5, 6),
])
def test_a_batchs_dates_are_bound_as_sqlalchemy_binds_them(value: object) -> None:
    dialect = sqlite.dialect()
    process = Date().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert list(_column_processor(process)([value, value])) == [process(value)] * 2


def test_other_processors_are_used_as_they_are() -> None:
    for dialect, kind in [(sqlite.dialect(), DateTime()), (postgresql.dialect(), Integer()),
                          (sqlite.dialect(), Integer())]:
        process = kind.dialect_impl(dialect).bind_processor(dialect)
        if process is None:
            continue
        value = dt.datetime(2001, 2, 3, 4, 5, 6) if isinstance(kind, DateTime) else 7
        assert list(_column_processor(process)([value, None])) == [process(value),
                                                                    process(None)]
    with pytest.raises(TypeError):  # refused as SQLAlchemy refuses it
        list(_column_processor(Date().dialect_impl(sqlite.dialect()).bind_processor(
            sqlite.dialect()))(["2001-02-03"]))  # type: ignore[misc]


def test_created_ids_are_kept_as_runs() -> None:
    run = _Run(ImportResult(), [], None, None)
    run.note_created([1, 2, 3])
    run.note_created([4, 5])  # continues the run
    run.note_created([9, 7, 8])  # one run in any order (a sequence's ids drawn ahead)
    run.note_created([12, 10])  # not one run
    run.note_created([])
    assert run.created_runs == [[1, 5], [7, 9], [12, 12], [10, 10]]
