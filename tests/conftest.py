"""Core test configuration; the fixtures come from ``recrm_core.testing`` (pytest11)."""

from __future__ import annotations

import pytest

from recrm_core import CRM


@pytest.fixture
def sqlite_crm(crm: CRM, recrm_backend: str) -> CRM:
    """``crm`` on a SQLite file (skipped on PostgreSQL): the connections kept aside
    (``recrm_core.spareconns``) are a SQLite file's only."""
    if recrm_backend != "sqlite":
        pytest.skip("connections are kept aside for SQLite files only")
    return crm
