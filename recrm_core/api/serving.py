"""The app of each ``recrm serve --workers N`` process, built from the environment
the command set (``RECRM_DATABASE_URL``, ``RECRM_CONFIG``, ``RECRM_KEY_FILE``), and the
logging the server's processes use."""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

from fastapi import FastAPI

from ..crm import CRM
from .app import create_app

#: the first path segments whose addresses name no person and carry no token
_PLAIN = frozenset({"v1", "healthz", "docs", "redoc", "openapi.json"})


def app_from_environment() -> FastAPI:
    return create_app(CRM.from_config(os.environ.get("RECRM_CONFIG") or None))


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
