"""A merge stopped inside its transaction, for the tests of a write racing a merge.

The merge runs in its own process and waits in a plugin's ``recrm_customer_merged``
(its rows locked) until the test releases it; meanwhile another process writes for the
duplicate. On PostgreSQL the test waits until that writer is seen waiting on a lock
(``wait_for_lock_wait``), so it cannot have read the customer after the merge."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import create_engine, make_url, text

from recrm_core import CRM, hookimpl


class MergeGate:
    """Stops a merge inside its transaction (its rows locked) until released."""

    def __init__(self, entered: Any, release: Any) -> None:
        self.entered, self.release = entered, release

    @hookimpl
    def recrm_customer_merged(self, uow: object, survivor: object, duplicate_id: int) -> None:
        self.entered.set()
        if not self.release.wait(timeout=60):
            raise RuntimeError("the test never released the merge")


def merger(url: str, plugins: list[str], survivor: int, duplicate: int, entered: Any,
           release: Any, out: Any) -> None:
    """A process's target: merge ``duplicate`` into ``survivor`` through the gate and put
    ``("merge", survivor id or the error)`` on ``out``."""
    try:
        with CRM(database_url=url, plugins=[*plugins, MergeGate(entered, release)]) as crm:
            out.put(("merge", crm.customers.merge(survivor, duplicate).id))
    except BaseException as exc:  # reported to the parent, which fails the test
        entered.set()
        out.put(("merge", f"{type(exc).__name__}: {exc}"))


def wait_for_lock_wait(url: str, name: str) -> None:
    """Until the PostgreSQL session named ``name`` (its application_name) waits on a lock."""
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + 60
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                if conn.execute(text(
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = :name"
                        " AND wait_event_type = 'Lock'"), {"name": name}).first():
                    return
                conn.rollback()
                time.sleep(0.05)
        raise AssertionError(f"{name} never waited for the merge's locks")
    finally:
        engine.dispose()


def _writing(target: Callable[..., Any], args: tuple[Any, ...], ready: Any, out: Any) -> None:
    """A process's target: ``target(url, ready, *rest)``, its answer (or its error) put
    on ``out`` as ``("write", ...)``."""
    try:
        out.put(("write", target(args[0], ready, *args[1:])))
    except BaseException as exc:
        ready.set()
        out.put(("write", f"{type(exc).__name__}: {exc}"))


def race_a_merge(database_url: str, backend: str, name: str, survivor: int, duplicate: int,
                 write: Callable[..., Any], *args: Any,
                 merge_plugins: Sequence[str] = ()) -> dict[str, Any]:
    """Merge ``duplicate`` into ``survivor`` in one process and, while the merge holds its
    locks, call ``write(url, ready, *args)`` in another: a module-level function (it is
    sent to a spawned process) that sets ``ready`` once set up, just before its write;
    ``url`` names the session ``name`` on PostgreSQL. Returns
    ``{"merge": survivor id or error, "write": write's answer or error}``."""
    write_url = database_url
    if backend == "postgresql":
        write_url = make_url(database_url).update_query_dict(
            {"application_name": name[:60]}).render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    entered, release, ready, out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    merging = ctx.Process(target=merger, args=(database_url, list(merge_plugins), survivor,
                                               duplicate, entered, release, out))
    merging.start()
    writing = None
    try:
        assert entered.wait(timeout=120), "the merge never reached its hook"
        writing = ctx.Process(target=_writing,
                              args=(write, (write_url, *args), ready, out))
        writing.start()
        assert ready.wait(timeout=120), "the writer never started"
        if backend == "postgresql":
            wait_for_lock_wait(database_url, name[:60])
        else:
            # No wait to see on SQLite: the writer is given the time to read what it
            # reads before its write transaction.
            time.sleep(0.5)
    finally:
        release.set()
    results = dict(out.get(timeout=120) for _ in range(2))
    merging.join(timeout=60)
    if writing is not None:
        writing.join(timeout=60)
    return results
