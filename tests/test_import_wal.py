"""SQLite's WAL checkpoints during an import: spaced to ``IMPORT_WAL_PAGES`` on the
import's own connections for its duration, each connection's own setting restored when
it goes back to the pool (after an error too), other threads' connections untouched."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from recrm_core import CRM, hookimpl
from recrm_core.importing import ImportStopped
from recrm_core.importing.walcheckpoints import IMPORT_WAL_PAGES

pytestmark = pytest.mark.recrm_settings(import_batch_size=2)

DEFAULT = 1000  # SQLite's own


def setting(conn: Any) -> int:
    # on the driver's connection: through SQLAlchemy it would begin a transaction,
    # which on SQLite waits for the import's write lock
    driver = conn.connection.dbapi_connection
    return int(driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


class Watcher:
    """Reads the setting of the batch's connection, and of a connection another thread
    checks out meanwhile (the HTTP API's requests run beside an import job)."""

    def __init__(self, crm: CRM, fail_on_call: int = 0) -> None:
        self.crm = crm
        self.fail_on_call = fail_on_call
        self.batch: list[int] = []
        self.other_thread: list[int] = []

    @hookimpl
    def recrm_customers_imported(self, uow: Any) -> None:
        self.batch.append(setting(uow.connection))

        def other() -> None:
            with self.crm.engine.connect() as conn:
                self.other_thread.append(setting(conn))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        if len(self.batch) == self.fail_on_call:
            raise RuntimeError("down")


def pooled_settings(crm: CRM) -> list[int]:
    """The setting of every connection the pool holds (and of a few new ones)."""
    with ExitStack() as stack:
        conns = [stack.enter_context(crm.engine.connect()) for _ in range(4)]
        return [setting(conn) for conn in conns]


def sqlite_only(crm: CRM) -> None:
    if crm.engine.dialect.name != "sqlite":
        pytest.skip("wal_autocheckpoint is SQLite's")


def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("name,mobile\n" + "".join(f"客户{i},139{i:08d}\n" for i in range(5)),
                    encoding="utf-8")
    return path


def test_the_import_spaces_checkpoints_and_restores_the_setting(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    sqlite_only(crm)
    watcher = Watcher(crm)
    register_plugin(watcher)
    assert pooled_settings(crm) == [DEFAULT] * 4
    result = crm.importer.import_file(csv_file(tmp_path))
    assert result.created == 5
    assert watcher.batch == [IMPORT_WAL_PAGES] * 3
    assert watcher.other_thread == [DEFAULT] * 3
    assert pooled_settings(crm) == [DEFAULT] * 4


def test_the_setting_is_restored_when_the_import_stops(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    sqlite_only(crm)
    watcher = Watcher(crm, fail_on_call=2)
    register_plugin(watcher)
    with pytest.raises(ImportStopped):
        crm.importer.import_file(csv_file(tmp_path))
    assert watcher.batch == [IMPORT_WAL_PAGES] * 2
    assert pooled_settings(crm) == [DEFAULT] * 4


def test_a_connection_of_its_own_keeps_its_setting(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    """A connection the caller tuned keeps its value once the import gives it back."""
    sqlite_only(crm)
    with crm.engine.connect() as conn:
        driver: Any = conn.connection.dbapi_connection
        driver.execute("PRAGMA wal_autocheckpoint=500")
    watcher = Watcher(crm)
    register_plugin(watcher)
    crm.importer.import_file(csv_file(tmp_path))
    assert watcher.batch == [IMPORT_WAL_PAGES] * 3
    assert sorted(pooled_settings(crm)) == [500, *[DEFAULT] * 3]
