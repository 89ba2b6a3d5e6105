"""SQLite's WAL checkpoints spaced out while an import writes.

SQLite copies the WAL back into the database file (a checkpoint) at the first commit
after the WAL has passed ``wal_autocheckpoint`` pages (1000 by default, ~4 MB): every
couple of batches during an import, each checkpoint writing pages that the next
batches dirty again. For the import's duration the connections it checks out in its
own thread checkpoint every :data:`IMPORT_WAL_PAGES` pages instead, and each is given
back to the pool with its own setting again (on error too). Figures in
bench/README.md ("Session 5, imp"); the WAL file may grow to about
``IMPORT_WAL_PAGES`` × the page size (64 MB at SQLite's 4 KB pages) during an
import. Other threads' connections (the HTTP API's requests) keep their setting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

#: pages of WAL between the import's checkpoints (SQLite's default is 1000)
IMPORT_WAL_PAGES = 16384


@contextmanager
def checkpoints_spaced(engine: Engine) -> Iterator[None]:
    """While the block runs, connections checked out in this thread checkpoint every
    :data:`IMPORT_WAL_PAGES` pages; their own setting is restored at check-in."""
    if engine.dialect.name != "sqlite":
        yield
        return
    pool = engine.pool
    thread = threading.get_ident()
    previous: dict[int, int] = {}  # id of the driver's connection -> its own setting

    def checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if threading.get_ident() != thread:
            return
        previous[id(dbapi_conn)] = dbapi_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={IMPORT_WAL_PAGES}")

    def checkin(dbapi_conn: Any, _record: Any) -> None:
        if dbapi_conn is None:  # invalidated: closed, nothing to restore
            return
        own = previous.pop(id(dbapi_conn), None)
        if own is not None:
            dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={int(own)}")

    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)
    try:
        yield
    finally:
        # every unit of work the import opened is closed (checked in) by now
        event.remove(pool, "checkout", checkout)
        event.remove(pool, "checkin", checkin)
