"""How the SDK's helper processes start and end: the import's worker, the charts'.

Both are one process working alongside the caller's (validating the next batches,
drawing the next chart). They start the same way (:func:`start_method`: a fork of
this process when that is safe, else a fork of a fork server) and, once started, run
:func:`started`: a terminal's Ctrl-C is left to the caller, which decides what it
means and then closes the worker, and the worker ends with the caller — killed, the
caller could not close it, and the worker would wait for work forever, holding its
memory (and, for the import, the file).
"""

from __future__ import annotations

import os
import signal
import threading


def start_method() -> str:
    """``fork`` in a single-threaded process (the CLI): the worker starts in
    milliseconds with the caller's modules already imported. With other threads running
    (the HTTP API's import jobs, a progress bar) forking could copy a lock another thread
    holds, so a fork server (a fresh single-threaded process) forks the worker instead,
    at the cost of importing the modules once more (~0.5 s, on the other core)."""
    return "fork" if threading.active_count() == 1 else "forkserver"


def started() -> None:
    """In the worker, first thing: Ctrl-C ignored, and an end with the caller."""
    # Ctrl-C reaches the whole process group: the caller decides what it means (the
    # import stops after the batch being written), the worker goes on until closed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), daemon=True).start()


def _end_with(sentinel: int) -> None:
    from multiprocessing.connection import wait

    wait([sentinel])  # ready once the caller has ended
    os._exit(1)


__all__ = ["start_method", "started"]
