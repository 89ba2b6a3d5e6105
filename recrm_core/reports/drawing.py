"""Who draws the dashboard's charts: this process, or a second one working alongside.

:func:`~recrm_core.reports.dashboard.sections` asks a :class:`Drawer` for each chart
and takes the SVG when every report has run. :data:`HERE` draws in this process.
A :class:`ChartWorker` hands the charts to one worker process, started early: while
this process does something long first (the demo seeds its company for seconds on
one core), the worker imports matplotlib on the other; then it draws each chart
while this process runs the next report. On ``recrm demo`` (3,000 customers) that
takes the dashboard's 1.3 s of matplotlib (its import and eleven charts) off the
main process; bench/README.md has the figures.

The worker only saves time, it never changes the page: it draws with the same
function (the same bytes), and whatever it cannot do (one core only, no fork, no
process could be started, the worker died, or drawing raised) is drawn here
instead, so the page and its errors are those of :data:`HERE`. It ignores Ctrl-C
(the caller decides and closes it) and ends with its caller.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .charts import svg_text

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from .model import Report

log = logging.getLogger(__name__)

#: a chart being drawn: called, it gives the SVG (or raises as drawing did)
Drawn = Callable[[], str]


class Drawer(Protocol):
    """What draws the page's charts: asked for each as its report has run."""

    def submit(self, report: Report) -> Drawn: ...


class _Here:
    """Draws each chart in this process when it is asked for."""

    def submit(self, report: Report) -> Drawn:
        return lambda: svg_text(report)


HERE: Drawer = _Here()


def _worthwhile() -> bool:
    """A worker pays on a second core, started by fork (or a fork server:
    :func:`recrm_core.workerstart.start_method`); elsewhere spawning one costs about
    what it saves."""
    return (os.cpu_count() or 1) > 1 and sys.platform == "linux"


def _warm() -> None:
    """The worker's first task: what every chart needs, loaded before the first."""
    import importlib

    for module in ("matplotlib.figure", "matplotlib.backends.backend_svg"):
        importlib.import_module(module)


class ChartWorker:
    """Draws charts in one worker process (see the module's doc); close it when done.

    Started at once, so it loads matplotlib while the caller goes on; where it would
    not pay (:func:`_worthwhile`) it starts nothing and every chart is drawn here.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        if not _worthwhile():
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from ..workerstart import start_method, started

        try:
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context(start_method()),
                initializer=started)
            self._pool.submit(_warm)  # starts the worker now
        except (OSError, RuntimeError) as exc:  # no process to be had: draw here
            log.debug("no chart worker: %s", exc)
            self.close()

    @property
    def running(self) -> bool:
        """Whether a worker was started (else every chart is drawn here)."""
        return self._pool is not None

    def submit(self, report: Report) -> Drawn:
        if self._pool is not None:
            try:
                future = self._pool.submit(svg_text, report)
            except RuntimeError as exc:  # the worker died (BrokenProcessPool) or closed
                log.debug("chart worker gone: %s", exc)
            else:
                return lambda: self._result(future, report)
        return HERE.submit(report)

    @staticmethod
    def _result(future: Future[str], report: Report) -> str:
        try:
            return future.result()
        except Exception:  # drawn here, it raises as it would without the worker
            log.debug("chart %s drawn here after the worker failed", report.name,
                      exc_info=True)
            return svg_text(report)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ChartWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
