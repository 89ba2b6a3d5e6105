"""What the batch loop lets happen only between batches: Ctrl-C and the cyclic
collector."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from ..collector import paused
from .progress import ImportInterrupted, ImportProgress, _Run


@contextmanager
def _interrupt_between_batches(run: _Run) -> Iterator[None]:
    """Defer a first Ctrl-C to the end of the batch being written: inside its commit
    the batch may be committed and not yet counted, and the count is what the person
    needs to hear. Only where Python's own SIGINT handler is in place (the main
    thread, no handler of the caller's)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    asked: list[bool] = []

    def note(signum: int, frame: object) -> None:
        asked.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one: at once

    report = run.progress

    def after_batch(progress: ImportProgress) -> None:  # called once a batch is counted
        if report is not None:
            report(progress)
        if asked:
            raise ImportInterrupted(run.result.model_copy(), exact=True)

    run.progress = after_batch
    signal.signal(signal.SIGINT, note)
    try:
        yield
        if asked:  # during the last steps, after the last batch
            raise ImportInterrupted(run.result.model_copy(), exact=True)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run.progress = report


def _gc_paused() -> AbstractContextManager[None]:
    """No cyclic garbage collection while a batch is received, resolved and written.

    A batch allocates ~15 objects a row (its records, keys, state, links, references)
    and holds them to its end: the collector ran over and over during it, walking
    every one of them and the whole heap of the process. Turned back on only once
    the batch is dropped, the collector's next (young) collection finds the few
    cycles the batch left (the session's) and not its ~100,000 live objects: turned
    on while the batch was still held, that one collection per batch cost ~15 % of
    the importing process (20-50 ms a batch). Memory stays flat.
    """
    # What the batch left in cycles goes now, not after many batches: the young
    # generation counts only the allocations that outlived the batch, so left to the
    # collector's own threshold a dozen batches' cycles (the session, and closures
    # holding a batch's state) piled up: 318 MB at 1M rows.
    return paused(then=_young_collection)


def _young_collection() -> None:
    gc.collect(0)
