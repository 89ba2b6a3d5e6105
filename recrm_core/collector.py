"""The cyclic garbage collector paused where a process makes many objects that live
on: while the ``recrm`` process starts, and (:func:`paused`) around an import's batches.

Start-up makes hundreds of thousands of objects (modules, classes, mappers, pydantic
schemas, the CRM) and frees almost none: each pass of the collector over them finds
nothing, and the pass at the interpreter's exit walks them all once more. Held off
while the command is found and while its CRM is built, then frozen (``gc.freeze``:
no later pass visits what start-up made). Only the console script does so
(:func:`hold`): a test running the CLI in its own process, or code calling
``cli.main``, keeps its collector as it is.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

#: whether this process is the console script, which :func:`hold` says
_console = False


def hold() -> None:
    """The console script's first step: the collector off until :func:`release`."""
    global _console
    _console = True
    gc.disable()


def release() -> None:
    """The command is found (its module imported): what start-up made is frozen and
    the collector runs again. Nothing outside the console script."""
    if _console and not gc.isenabled():
        gc.freeze()
        gc.enable()


def held() -> AbstractContextManager[None]:
    """Around a later step of start-up (building the command's CRM): the collector off,
    then what the step made frozen. Nothing outside the console script."""
    return paused(then=gc.freeze) if _console else nullcontext()


@contextmanager
def paused(then: Callable[[], object] | None = None) -> Iterator[None]:
    """The collector off for the block, and ``then`` run as it is turned back on. The
    switch is process-wide: if something else already turned the collector off it is
    left alone (and so never turned on early by us), and ``then`` does not run."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if then is not None:
            then()
        gc.enable()
