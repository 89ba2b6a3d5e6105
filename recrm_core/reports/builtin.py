"""The core's reports, registered like any plugin's (a builtin plugin listed in
``recrm_core.plugins.BUILTIN_PLUGINS``).

Cheap to import: each report's module (its SQL) is imported when the report runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..hooks import hookimpl

if TYPE_CHECKING:
    from ..crm import CRM
    from .model import Report, ReportRequest, ReportSpec

name = "reports"


def _lazy(module: str) -> Callable[[CRM, ReportRequest], Report]:
    def run(crm: CRM, request: ReportRequest) -> Report:
        found: Callable[[CRM, ReportRequest], Report] = importlib.import_module(
            f"{__package__}.{module}").run
        return found(crm, request)

    run.__name__ = f"run_{module}"
    return run


@hookimpl
def recrm_reports(register: Callable[[ReportSpec], None]) -> None:
    from .model import ReportOption, ReportSpec

    # Who may run each; within it, aggregates.py narrows what each role sees (a
    # consultant their own customers, service staff their department's cases).
    sales_side = ("admin", "manager", "analyst", "sales")
    service_side = ("admin", "manager", "analyst", "service")
    # Each module named here defines ``run(crm, request) -> Report``.
    register(ReportSpec(
        name="funnel", roles=sales_side, title="Sales funnel",
        description="customers reaching each stage, conversion between stages and the "
                    "median days between them, per project and period",
        run=_lazy("funnel")))
    register(ReportSpec(
        name="sources", roles=sales_side, title="Lead sources",
        description="customers, visits, subscriptions and contracts by lead source, "
                    "with conversion per source",
        run=_lazy("sources")))
    register(ReportSpec(
        name="cases", roles=service_side, title="Service levels",
        description="on-time rate against the SLA, resolution and response times, "
                    "reopen rate and escalations, by department, category, intake "
                    "channel and project",
        options=(ReportOption(name="group", help="what the rows are",
                              kind="choice",
                              choices=("department", "category", "channel", "project"),
                              default="department"),),
        run=_lazy("cases")))
    register(ReportSpec(
        name="staff", roles=sales_side, title="Staff and contact targets",
        description="per consultant and department: customers owned, interactions, "
                    "customers contacted, contact minutes, follow-ups, conversion, "
                    "and who is behind the contact targets",
        options=(ReportOption(name="department", help="only this department"),),
        run=_lazy("staff")))
    register(ReportSpec(
        name="scorecard", title="Balanced scorecard",
        description="satisfaction and loyalty, complaints per 100 owners, on-time "
                    "rate, response time and sales conversion per department and "
                    "project, against targets, with the change from the previous "
                    "period (--by: each period against the one before it)",
        run=_lazy("scorecard")))
