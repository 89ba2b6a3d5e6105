"""Workers in separate processes released together, for the multi-process race tests.

Each worker is its own process with its own CRM (engine, connections), as staff at
several desks would be: threads would share one interpreter and hide what only
separate connections racing on the database show.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any


def run_together(target: Callable[..., None], args: Sequence[tuple[Any, ...]],
                 timeout: float = 300) -> list[Any]:
    """Run ``target(*a, barrier, out)`` in one spawned process per ``a`` in ``args``.

    Each worker waits on ``barrier`` (a ``multiprocessing.Barrier`` for all of them)
    before its racing step and puts exactly one ``(status, value)`` on ``out``:
    ``("ok", value)``, or ``("error", message)`` after aborting the barrier so the
    others do not wait for it. Returns the values, in no particular order; an error
    in any worker fails the calling test.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args))
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, out)) for a in args]
    for p in procs:
        p.start()
    results = [out.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [value for status, value in results if status == "error"]
    assert not errors, errors
    return [value for _, value in results]
