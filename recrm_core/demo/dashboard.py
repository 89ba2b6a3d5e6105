"""What the demo writes and shows beside its database: the dashboard and its reports."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..crm import CRM
    from ..reports.drawing import Drawer
    from ..reports.model import ReportRequest

#: the dashboard the demo writes beside its database
DASHBOARD_FILE = "recrm-demo-dashboard.html"
#: the reports the demo prints (``recrm report NAME`` runs them again)
DEMO_REPORTS = ("funnel", "scorecard")


def demo_request(crm: CRM, name: str) -> ReportRequest:
    """How the demo runs ``name``: the scorecard over the last 90 days (against the 90
    before them), which hold the demo's service cases, resolved shortly before now;
    the others with their defaults."""
    from ..reports.model import ReportRequest

    if name != "scorecard":
        return ReportRequest()
    today = dt.datetime.now(crm.config.zone).date()
    return ReportRequest(start=today - dt.timedelta(days=89), end=today)


def demo_path(crm: CRM, name: str) -> str:
    """Where a demo section writes its file or directory ``name``: beside the demo's
    SQLite database, else in the working directory. Never a shared place such as the
    temporary directory: two demos at once (two people on one machine) would collide
    there, and what the demo writes holds its customers' addresses."""
    import os

    database = crm.engine.url.database if crm.engine.dialect.name == "sqlite" else None
    beside = os.path.dirname(os.path.abspath(database)) \
        if database and database != ":memory:" else os.getcwd()
    return os.path.join(beside, name)


def write_demo_dashboard(crm: CRM, drawer: Drawer | None = None) -> str:
    """Every report on one page (``recrm report dashboard``), beside the demo's SQLite
    database, else in the working directory, its charts drawn by ``drawer`` (default:
    here); returns where."""
    from ..reports.dashboard import write_dashboard

    path = demo_path(crm, DASHBOARD_FILE)
    write_dashboard(crm, path, drawer=drawer)
    return path
