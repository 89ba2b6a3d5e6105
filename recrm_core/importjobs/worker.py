"""The server's background thread that runs, resumes and sweeps import jobs."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from .service import ImportJobService, worker_name

if TYPE_CHECKING:
    from ..crm import CRM

_log = logging.getLogger("recrm.importjobs")

#: how often an idle worker looks for jobs queued by other server processes
POLL_SECONDS = 2.0
SWEEP_SECONDS = 3600.0


class ImportWorker:
    """The server's background thread: runs queued jobs, resumes those a crashed server
    left, sweeps old ones. ``wake()`` after queuing one; ``stop()`` pauses a running
    job after its current batch (it is resumed by the next worker)."""

    def __init__(self, crm: CRM, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.crm = crm
        self.poll_seconds = poll_seconds
        self.name = worker_name()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="recrm-import-jobs",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        jobs = ImportJobService(self.crm)
        swept: float | None = None  # at start, then hourly
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if swept is None or time.monotonic() - swept > SWEEP_SECONDS:
                    jobs.sweep()
                    swept = time.monotonic()
                jobs.run_pending(self.name, self._stopping)
            except Exception:  # the database is away: try again at the next poll
                _log.exception("import jobs: worker round failed")
            self._wake.wait(self.poll_seconds)
