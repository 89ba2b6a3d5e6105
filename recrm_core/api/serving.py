"""The app of each ``recrm serve --workers N`` process, built from the environment
the command set (``RECRM_DATABASE_URL``, ``RECRM_CONFIG``, ``RECRM_KEY_FILE``)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from ..crm import CRM
from .app import create_app


def app_from_environment() -> FastAPI:
    return create_app(CRM.from_config(os.environ.get("RECRM_CONFIG") or None))
