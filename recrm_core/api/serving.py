"""The app of each ``recrm serve --workers N`` process, built from the environment
the command set (``RECRM_DATABASE_URL``, ``RECRM_CONFIG``, ``RECRM_KEY_FILE``), the
logging the server's processes use, and how a stopped server exits."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from fastapi import FastAPI

from ..crm import CRM
from .app import create_app

#: the first path segments whose addresses name no person and carry no token
_PLAIN = frozenset({"v1", "healthz", "docs", "redoc", "openapi.json"})


def app_from_environment() -> FastAPI:
    return create_app(CRM.from_config(os.environ.get("RECRM_CONFIG") or None))


@contextlib.contextmanager
def clean_exit_on_sigterm() -> Iterator[None]:
    """Within it, SIGTERM ends the process with exit status 0 (SystemExit).

    uvicorn (0.29 on) shuts down gracefully on SIGTERM, then restores the handler it
    found and raises the signal again, so that the program's own handling runs
    ("cooperative signal handling", uvicorn PR #1600). Python's default is to die of
    the signal (status -15, 143 in a shell), which a service manager reads as a
    failure after a clean stop; SIGINT ends with 0, and so does the ``--workers N``
    supervisor. This handler is what uvicorn finds and raises into: it also ends a
    server stopped before uvicorn took the signal over. Outside the main thread
    (where no handler can be set) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stopped(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def logged_target(target: str) -> str:
    """What the access log shows of a request's target: the path without the query's
    values (``/v1/customers?mobile=…`` would write the person's mobile, ID number or
    email into the log, where no erasure reaches), and of a page's address (``/s/``,
    ``/u/``, a plugin's callback) its first segment only: the rest is a token or a
    secret that acts for the person."""
    path, _, query = target.partition("?")
    first = path.lstrip("/").partition("/")[0]
    if first not in _PLAIN:
        path = f"/{first}/..." if path.count("/") > 1 else path
    return f"{path}?..." if query else path


class AccessLogRedaction(logging.Filter):
    """uvicorn's access record with :func:`logged_target` for its request target."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], logged_target(args[2]), *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, its access log through
    :class:`AccessLogRedaction` (a dictionary: ``--workers`` processes apply it too)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["recrm_access"] = {
        "()": f"{__name__}.{AccessLogRedaction.__name__}"}
    config["handlers"]["access"]["filters"] = ["recrm_access"]
    return config
