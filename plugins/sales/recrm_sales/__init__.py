"""recrm-sales: the sales-control table (销控), holds, tickets (认筹), deals with
co-buyers, changes after signing, payment schedules and receivables.

- buildings and units per project, imported from the 销控表 (CSV or XLSX) under the
  core's errors-file conventions; a unit is ``PROJECT/BUILDING-ROOM`` or its id;
- holds that lapse after ``[sales] hold_minutes``, one active hold and one active
  deal per unit (partial unique indexes);
- tickets numbered per project without gaps, called in number order on opening day;
- deals (认购 → 签约 → 交房) with co-buyers and shares, each step moving every party's
  stage through the core's public API; cancellation, change of unit and change of
  buyer as explicit operations with a reason, recorded in the deal's history;
- payment schedules, receipts (idempotent on a reference), receivables, what is due
  next on the 360 view, the ``sales.payment_due`` webhook event;
- ``recrm sales ...`` commands, ``/v1/sales/`` routes, the privacy hooks and a demo
  section;
- the report ``sales.deals`` (``recrm_reports``): units sold, deal amounts, receipts
  and receivables per project and period (see :mod:`recrm_sales.reports`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recrm_core import lazy_exports

# The hook implementations pluggy finds: loading the plugin imports these and the
# settings, nothing more; every other public name is imported on first use.
from .hooks import (
    recrm_api_routes,
    recrm_customer_erase,
    recrm_customer_export,
    recrm_customer_merged,
    recrm_declare_tables,
    recrm_demo,
    recrm_project_renamed,
    recrm_register_audit_actions,
    recrm_register_commands,
    recrm_register_settings,
    recrm_reports,
    recrm_timeline,
    recrm_webhook_events,
)
from .settings import NAME, SalesSettings, settings

#: the plugin's name (``recrm.toml``, settings section, table prefix)
name = NAME
__version__ = "0.1.0"

lazy_exports(__name__, {
    **dict.fromkeys(["Deal", "Hold", "ImportOutcome", "Instalment", "Party", "PartyIn",
                     "Receipt", "Receivable", "SalesReport", "Ticket", "Unit"], "models"),
    "Sales": "service",
    "service": "service",
})

if TYPE_CHECKING:  # the same names, for type checkers
    from .models import (
        Deal,
        Hold,
        ImportOutcome,
        Instalment,
        Party,
        PartyIn,
        Receipt,
        Receivable,
        SalesReport,
        Ticket,
        Unit,
    )
    from .service import Sales, service

__all__ = [
    "NAME",
    "Deal",
    "Hold",
    "ImportOutcome",
    "Instalment",
    "Party",
    "PartyIn",
    "Receipt",
    "Receivable",
    "Sales",
    "SalesReport",
    "SalesSettings",
    "Ticket",
    "Unit",
    "name",
    "recrm_api_routes",
    "recrm_customer_erase",
    "recrm_customer_export",
    "recrm_customer_merged",
    "recrm_declare_tables",
    "recrm_demo",
    "recrm_project_renamed",
    "recrm_register_audit_actions",
    "recrm_register_commands",
    "recrm_register_settings",
    "recrm_reports",
    "recrm_timeline",
    "recrm_webhook_events",
    "service",
    "settings",
]
