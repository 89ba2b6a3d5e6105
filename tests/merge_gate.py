"""A merge stopped inside its transaction, for the tests of a write racing a merge.

The merge runs in its own process and waits in a plugin's ``recrm_customer_merged``
(its rows locked) until the test releases it; meanwhile another process writes for the
duplicate. On PostgreSQL the test waits until that writer is seen waiting on a lock
(``wait_for_lock_wait``), so it cannot have read the customer after the merge."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import create_engine, text

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
