"""Race tests: the same step done by several processes at once, released together.

Concurrency is enforced by the database (a constraint, a lock, a guarded ``UPDATE``),
so it is proved with processes, each with its own ``CRM``, engine and connections, as
staff at several desks would be: threads would share one interpreter and hide what
separate connections racing on the database show. ::

    from recrm_core import CRM
    from recrm_core.testing import StartLine, run_together

    def claim(url: str, staff: str, start: StartLine) -> str:
        crm = CRM(database_url=url)
        try:
            crm.pool.list("XL2")  # warm up, so the racing step is all that is left
            start.wait()           # every process released together
            return crm.pool.claim(1, "XL2", staff).owner_staff
        finally:
            crm.close()

    def test_one_claim_wins(crm, recrm_database_url):
        ...
        owners = run_together(claim, [(recrm_database_url, s) for s in ("li", "wang")])

A worker that raises, dies without a word (killed, ``os._exit``) or does not finish in
time fails the test with :class:`RaceFailed`, naming the process, its arguments and
its traceback; the others are released (the start line is broken) rather than left
waiting.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

T = TypeVar("T")

#: how long a race may take in all, by default: spawned processes import recrm afresh,
#: which takes seconds on a loaded machine
RACE_TIMEOUT = 300.0
#: how long to wait for a process to exit once it has reported (or been killed)
_EXIT_TIMEOUT = 30.0
_BROKEN = "threading.BrokenBarrierError"


class RaceFailed(AssertionError):
    """A race's process failed: raised, died without reporting, or ran out of time.
    An ``AssertionError``, so pytest reports it as the test's failure."""


class StartLine:
    """What each worker waits on before its racing step: ``start.wait()`` returns in
    every process once all of them have called it (a ``multiprocessing.Barrier``).
    Reusable for several rounds, each process calling it the same number of times."""

    def __init__(self, barrier: Barrier, timeout: float) -> None:
        self._barrier, self._timeout = barrier, timeout

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the other processes; ``threading.BrokenBarrierError`` when one of
        them failed (or ``timeout`` passed, by default the race's)."""
        self._barrier.wait(self._timeout if timeout is None else timeout)


@dataclass(frozen=True)
class _Report:
    index: int
    ok: bool
    #: the pickled return value when ``ok``, else the traceback
    payload: bytes | str


def _race_process(index: int, worker: Callable[..., Any], args: tuple[Any, ...],
                  barrier: Barrier, out: Queue[_Report], timeout: float) -> None:
    """The spawned process: runs ``worker(*args, start)`` and reports exactly once."""
    try:
        # Pickled here, so a value that cannot cross is this worker's reported error.
        report = _Report(index, True, pickle.dumps(worker(*args, StartLine(barrier, timeout))))
    except BaseException:
        barrier.abort()  # the others do not wait for this one
        report = _Report(index, False, traceback.format_exc())
    out.put(report)


def _described(worker: Callable[..., Any], index: int, count: int,
               args: tuple[Any, ...], pid: int | None) -> str:
    shown = ", ".join([*(_short(repr(a)) for a in args), "start"])
    name = getattr(worker, "__qualname__", repr(worker))
    return f"process {index} of {count} (pid {pid}): {name}({shown})"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def run_together(worker: Callable[..., T], args: Sequence[tuple[Any, ...]], *,
                 timeout: float = RACE_TIMEOUT) -> list[T]:
    """Run ``worker(*a, start)`` in one spawned process per ``a`` in ``args``; return
    what each returned, in the order of ``args``.

    ``start`` is a :class:`StartLine` for all of them: build what the worker needs
    (its ``CRM``, a warm-up read), call ``start.wait()``, then do the racing step.
    ``worker`` and what it returns cross process boundaries: a module-level function
    of the test module, returning something picklable (the outcome to assert on, not
    ORM rows). Raises :class:`RaceFailed` naming every process that raised (with its
    traceback), ended without reporting or with a non-zero exit code, or had not
    finished ``timeout`` seconds after the start; none is left running.
    """
    if not args:
        raise ValueError("run_together needs at least one process's arguments")
    ctx = multiprocessing.get_context("spawn")
    count = len(args)
    barrier = ctx.Barrier(count)
    out: Queue[_Report] = ctx.Queue()
    # Not daemons: a worker may start processes of its own (an import's worker); none
    # is left running all the same (``_end``).
    procs = [ctx.Process(target=_race_process, args=(i, worker, tuple(a), barrier, out, timeout),
                         name=f"race-{i}") for i, a in enumerate(args)]
    for proc in procs:
        proc.start()
    reports: dict[int, _Report] = {}
    problems: dict[int, str] = {}
    try:
        _collect(procs, out, barrier, reports, problems, time.monotonic() + timeout, timeout)
    finally:
        _end(procs, problems, reports)
    failed = [i for i in range(count) if i in problems or not reports[i].ok]
    if failed:
        raise RaceFailed(_failure(worker, args, procs, reports, problems, failed))
    return [pickle.loads(reports[i].payload) for i in range(count)]  # type: ignore[arg-type]


def _collect(procs: Sequence[BaseProcess], out: Queue[_Report], barrier: Barrier,
             reports: dict[int, _Report], problems: dict[int, str], deadline: float,
             timeout: float) -> None:
    """Every process's report, until all reported or failed in another way."""
    while len(reports) + len(problems) < len(procs):
        try:
            report = out.get(timeout=0.2)
        except queue.Empty:
            pass
        else:
            reports[report.index] = report
            continue
        for i, proc in enumerate(procs):
            if i in reports or i in problems or proc.exitcode is None:
                continue
            # Its report, flushed before it exited, may still be on its way.
            try:
                late = out.get(timeout=1)
            except queue.Empty:
                problems[i] = f"ended with exit code {proc.exitcode} without reporting"
                barrier.abort()
            else:
                reports[late.index] = late
        if time.monotonic() > deadline:
            for i in range(len(procs)):
                if i not in reports and i not in problems:
                    problems[i] = f"had not finished {timeout:g} s after the start (killed)"
            barrier.abort()


def _end(procs: Sequence[BaseProcess], problems: dict[int, str],
         reports: dict[int, _Report]) -> None:
    """Every process joined; one still running killed. A process that reported and
    then exited badly (its clean-up failed) is a problem too."""
    for i, proc in enumerate(procs):
        proc.join(_EXIT_TIMEOUT if i in reports else 0)
        if proc.exitcode is None:
            proc.kill()
            proc.join(_EXIT_TIMEOUT)
            problems.setdefault(i, f"still running {_EXIT_TIMEOUT:g} s after reporting (killed)")
        elif proc.exitcode != 0:
            problems.setdefault(i, f"exited with code {proc.exitcode} after reporting")


def _failure(worker: Callable[..., Any], args: Sequence[tuple[Any, ...]],
             procs: Sequence[BaseProcess], reports: dict[int, _Report],
             problems: dict[int, str], failed: list[int]) -> str:
    """The message: each failed process named, its traceback or what happened; those
    that only found the start line broken (another one failed first) in one line."""
    count = len(procs)
    first: list[str] = []
    broken: list[str] = []
    for i in failed:
        what = _described(worker, i, count, tuple(args[i]), procs[i].pid)
        if i in reports and not reports[i].ok:
            trace = str(reports[i].payload)
            if trace.rstrip().splitlines()[-1].startswith(_BROKEN):
                broken.append(f"{what}: the start line was broken")
                continue
            first.append(f"{what} raised:\n{trace.rstrip()}")
        else:
            first.append(f"{what} {problems[i]}")
    lines = [f"run_together: {len(failed)} of {count} processes failed"]
    lines += first
    lines += broken
    return "\n".join(lines)


__all__ = ["RACE_TIMEOUT", "RaceFailed", "StartLine", "run_together"]
