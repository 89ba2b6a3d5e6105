"""Import rows validated in a worker process (recrm_core.importrows): the same records,
rejections, row numbers, batches, progress and read errors as in-process validation;
and the validators' single parse of an ID card."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from recrm_core import CRM, importrows, workerstart
from recrm_core.csvsource import SNIFF_BYTES, ImportReadError
from recrm_core.errors import RecrmError
from recrm_core.identity import current_date, id_card_check_character, id_card_facts
from recrm_core.importing import ImportProgress
from recrm_core.importrows import Batch, batches
from recrm_core.models import RejectedRow

M1, M2, M3, M4 = "13812345678", "13912345678", "13712345678", "15012345678"


def card(body: str) -> str:
    return body + id_card_check_character(body)


CARD_F = card("11010519491231002")  # female, 1949-12-31
CARD_M = card("11010519800101001")  # male, 1980-01-01

ROWS = (
    "name,mobile,id_card,gender,birth_date,email,project,budget\n"
    f"王伟,{M1},,男,1980-01-01,WW@X.cn,A,200万\n"     # 1 create
    f",{M1},{CARD_M},,,,B,\n"                         # 2 merge into row 1, adds the card
    "坏,1234,,,,,A,\n"                                # 3 rejected: mobile
    f"李娜,{M2},{CARD_F},男,,,,\n"                    # 4 rejected: gender vs the card
    f"李娜,{M2},{CARD_F},,,,A,\"1,200,000\"\n"        # 5 create
    f"张三,{M3},,,2999-01-01,,,\n"                    # 6 rejected: birth date in the future
    f"赵四,{M4},,F,,zs@x.cn,C,\n"                     # 7 create
)


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every file goes to the worker; the list counts the imports that used one."""
    used: list[int] = []
    for name in ("_in_worker", "_read_in_worker"):  # a fork server's, a fork's
        original = getattr(importrows, name)

        def counted(*args: Any, original: Any = original) -> Iterator[Batch]:
            used.append(1)
            batches: Iterator[Batch] = original(*args)
            return batches

        monkeypatch.setattr(importrows, name, counted)
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0)
    return used


def _import(crm: CRM, path: Path) -> tuple[Any, list[RejectedRow], list[ImportProgress]]:
    rejected: list[RejectedRow] = []
    progress: list[ImportProgress] = []
    result = crm.importer.import_file(path, on_reject=rejected.append,
                                      progress=progress.append)
    return result, rejected, progress


@pytest.mark.recrm_settings(import_batch_size=2)
def test_worker_imports_like_in_process(crm: CRM, tmp_path: Path, worker: list[int]) -> None:
    path = tmp_path / "in.csv"
    path.write_text(ROWS, encoding="utf-8")
    result, rejected, progress = _import(crm, path)
    assert worker == [1]
    assert (result.rows, result.created, result.merged, result.rejected) == (7, 3, 1, 3)
    assert [(r.row, r.field) for r in rejected] == [
        (3, "mobile"), (4, "gender"), (6, "birth_date")]
    # one progress call per committed batch of two rows, counted as read up to it
    assert [(p.rows, p.rows_read) for p in progress] == [(2, 2), (4, 4), (6, 6), (7, 7)]
    assert progress[-1].bytes_read == path.stat().st_size
    wang = crm.customers.find(mobile=M1)[0]
    assert (wang.name, wang.email, wang.budget, wang.id_card) == (
        "王伟", "ww@x.cn", 2_000_000, CARD_M)
    assert wang.birth_date == dt.date(1980, 1, 1) and wang.gender == "male"
    assert sorted(p.project for p in wang.projects) == ["A", "B"]
    li = crm.customers.find(mobile=M2)[0]
    # gender and birth date come from the ID card
    assert (li.gender, li.birth_date, li.budget) == ("female", dt.date(1949, 12, 31), 1_200_000)
    assert crm.customers.count() == 3
    # idempotent through the worker too
    again, _, _ = _import(crm, path)
    assert (again.created, again.merged, again.rejected) == (0, 4, 3)
    assert crm.customers.count() == 3


@pytest.mark.recrm_settings(import_batch_size=100)
def test_worker_stops_at_an_unreadable_row_after_the_rows_before_it(
    crm: CRM, tmp_path: Path, worker: list[int]
) -> None:
    # The first 64 KB decide UTF-8; a GB18030 row after them stops the import there,
    # after the 3000 rows before it, batches the worker validated ahead or not.
    lines = ["name,mobile"] + [f"客户-{i},139{i:08d}" for i in range(3000)]
    head = ("\n".join(lines) + "\n").encode()
    assert len(head) > SNIFF_BYTES
    path = tmp_path / "in.csv"
    path.write_bytes(head + "王伟,13812345678\n".encode("gb18030") + b"late,13712345678\n")
    with pytest.raises(ImportReadError) as info:
        crm.importer.import_file(path)
    assert worker == [1]
    assert info.value.row == 3001
    assert "row 3001" in str(info.value) and "3000 row(s)" in str(info.value)
    assert crm.customers.count() == 3000
    assert crm.customers.find(mobile=M3) == []


def _rows(n: int, fail_at: int | None = None) -> Iterator[tuple[int, dict[str, Any] | RejectedRow]]:
    for i in range(1, n + 1):
        if i == fail_at:
            raise ImportReadError(i, "is not valid CSV (test)")
        if i == 4:
            yield i, RejectedRow(row=i, field="name", reason="invalid bytes")
            continue
        yield i, {"name": f"客户{i}", "mobile": f"139{i:08d}" if i != 6 else "123",
                  "birth_date": "1990/1/2"}


class _Source:
    """What batches() reads of a source: a CSV file's counters and size."""

    sheet = None
    total_bytes = 10**9
    rows_read = 0
    bytes_read = 0


@pytest.mark.parametrize("parallel", [False, True])
def test_batches_are_the_same_in_a_worker(parallel: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0 if parallel else 10**12)
    with_worker = list(batches(_rows(7), 3, "CN", _Source()))  # type: ignore[arg-type]
    assert [(b.first_row, b.last_row, b.rows) for b in with_worker] == [
        (1, 3, 3), (4, 6, 3), (7, 7, 1)]
    assert [[r for r, _ in b.records] for b in with_worker] == [[1, 2, 3], [5], [7]]
    assert [[(r.row, r.field) for r in b.rejected] for b in with_worker] == [
        [], [(4, "name"), (6, "mobile")], []]
    rec = with_worker[0].records[1][1]
    assert rec.mobiles == ["+8613900000002"] and rec.birth_date == dt.date(1990, 1, 2)
    assert rec.model_fields_set == {"name", "mobiles", "birth_date"}
    assert all(b.error is None for b in with_worker)


@pytest.mark.parametrize("parallel", [False, True])
def test_batches_end_at_a_read_error(parallel: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0 if parallel else 10**12)
    got = list(batches(_rows(9, fail_at=6), 2, "CN", _Source()))  # type: ignore[arg-type]
    # rows 1-2, 3-4, then 5 and the error of row 6; nothing after it
    assert [(b.first_row, b.last_row, b.rows) for b in got] == [(1, 2, 2), (3, 4, 2), (5, 5, 1)]
    assert [b.error is not None for b in got] == [False, False, True]
    error = got[-1].error
    assert error is not None and error.row == 6


def test_worker_records_equal_validated_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(1, {"mobile": f"+86 {M1}", "id_card": CARD_F.lower(), "email": "A@B.CN",
                 "budget": "1.5万", "project": "XL\u200b1"})]
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0)
    [batch] = list(batches(iter(rows), 10, "CN", _Source()))  # type: ignore[arg-type]
    direct = importrows.validate_row(1, rows[0][1])
    [(_, sent)] = batch.records
    assert sent == direct
    assert sent.model_fields_set == direct.model_fields_set  # type: ignore[union-attr]
    assert (sent.project, sent.budget, sent.gender) == ("XL1", 15_000, "female")


def test_id_card_facts() -> None:
    facts = id_card_facts(CARD_M)
    assert (facts.birth_date, facts.gender, facts.number) == (dt.date(1980, 1, 1), "male", CARD_M)
    assert id_card_facts(CARD_F).gender == "female"


def test_current_date_is_today() -> None:
    assert current_date() == dt.date.today()


def _customers_in(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM customers")).scalar_one())
    finally:
        engine.dispose()


def test_ctrl_c_from_a_terminal_reaches_the_worker_too_and_counts_exactly(
    recrm_database_url: str, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C goes to the whole process group, the validation worker
    included: the worker ignores it, the import stops after the batch being written
    and says exactly how many rows were committed (exit 130)."""
    rows = 200_000  # ~4 MB: validated by the worker
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("name,mobile\n")
        fh.writelines(f"客户{i},139{i:08d}\n" for i in range(rows))
    assert path.stat().st_size >= importrows.PARALLEL_MIN_BYTES
    config = tmp_path / "recrm.toml"
    config.write_text(f"database_url = {json.dumps(recrm_database_url)}\n"
                      "import_batch_size = 500\n", encoding="utf-8")
    script = Path(sys.executable).with_name("recrm")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from recrm_core.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if k not in ("RECRM_DATABASE_URL", "RECRM_DEBUG")}
    ready = subprocess.run([*command, "--config", str(config), "customers", "count"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert ready.returncode == 0, ready.stderr
    proc = subprocess.Popen(
        [*command, "--config", str(config), "customers", "import", str(path)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    try:
        deadline = time.monotonic() + 60
        while _customers_in(recrm_database_url) == 0:  # some batches are committed
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert (proc.returncode, out) == (130, ""), stderr
    match = re.fullmatch(
        r"error: customers import interrupted: (\d+) row\(s\) were committed;"
        r" running the same import again is safe and finishes the rest\n", stderr)
    assert match, stderr
    committed = int(match.group(1))
    assert 0 < committed < rows and committed % 500 == 0
    assert committed == _customers_in(recrm_database_url)


def test_batches_in_a_threaded_process_use_a_fork_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With other threads alive (the API's import jobs) the worker comes from a fork
    server, not a fork of this process; the batches are the same."""
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0)
    got: list[list[Batch]] = []
    methods: list[str] = []
    original = workerstart.start_method

    def noted() -> str:
        methods.append(original())
        return methods[-1]

    monkeypatch.setattr(importrows, "start_method", noted)
    thread = threading.Thread(
        target=lambda: got.append(list(batches(_rows(7), 3, "CN", _Source()))))  # type: ignore[arg-type]
    thread.start()
    thread.join(120)
    assert methods == ["forkserver"]
    [result] = got
    assert [[r for r, _ in b.records] for b in result] == [[1, 2, 3], [5], [7]]
    assert [[(r.row, r.field) for r in b.rejected] for b in result] == [
        [], [(4, "name"), (6, "mobile")], []]


_ORPHAN_SCRIPT = """
import sys, threading, time
from recrm_core import importrows

class Source:
    sheet = None
    total_bytes = 10**9
    rows_read = 0
    bytes_read = 0

def rows():
    i = 0
    while True:  # an endless file: the worker always has more to read ahead
        i += 1
        yield i, {"name": f"c{i}", "mobile": f"139{i % 10**8:08d}"}

if sys.argv[1] == "threaded":  # as the API's import jobs: a fork server's worker
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
importrows.PARALLEL_MIN_BYTES = 0
batches = importrows.batches(rows(), 50, "CN", Source())
next(batches)
print("ready", flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, ppid in parents.items() if ppid == parent}
        found |= children
        todo.extend(children)
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="the worker runs on Linux only")
@pytest.mark.parametrize("mode", ["fork", "threaded"])
def test_a_killed_importer_does_not_orphan_its_worker(mode: str) -> None:
    """Killed (SIGKILL: no chance to close its worker), the importing process takes its
    worker with it, whether forked from it or from a fork server."""
    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT, mode],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        helpers = _descendants(proc.pid)
        assert helpers  # the worker (and a fork server)
    finally:
        proc.kill()
        proc.wait(30)
    deadline = time.monotonic() + 30
    while (left := {pid for pid in helpers if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left


def test_the_reading_worker_collects_even_forked_while_the_importer_paused_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The importer pauses its collector while it takes a batch, which is when the
    reading worker is forked: the worker turns its own back on (rejected rows leave
    cycles; without it the worker grew to 319 MB over 1M rows). The rows are read in
    the worker, so a row can say what the worker's collector is doing."""
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(importrows, "start_method", lambda: "fork")

    def rows() -> Iterator[tuple[int, dict[str, Any] | RejectedRow]]:
        yield 1, {"name": f"collector-{gc.isenabled()}", "mobile": M1}

    gc.disable()
    try:
        [batch] = list(batches(rows(), 10, "CN", _Source()))  # type: ignore[arg-type]
    finally:
        gc.enable()
    assert [rec.name for _, rec in batch.records] == ["collector-True"]


class _Stuck(Exception):
    """An exception that pickles but does not load back (its __init__ differs)."""

    def __init__(self, row: int, why: str) -> None:
        super().__init__(f"row {row}: {why}")


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), _Stuck(4, "x")])
def test_a_reader_failing_in_the_worker_raises_here(
    error: Exception, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What reading raises besides a read error (a disk's OSError) is raised in the
    importing process as if it had read the file itself."""
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(importrows, "start_method", lambda: "fork")

    def rows() -> Iterator[tuple[int, dict[str, Any] | RejectedRow]]:
        yield from _rows(3)
        raise error

    got = batches(rows(), 2, "CN", _Source())  # type: ignore[arg-type]
    assert [b.rows for b in [next(got)]] == [2]
    with pytest.raises((OSError, RecrmError)) as info:
        next(got)
    if isinstance(error, OSError):
        assert isinstance(info.value, OSError) and info.value.errno == 5
    else:
        assert "reading the file failed" in str(info.value) and "row 4: x" in str(info.value)
