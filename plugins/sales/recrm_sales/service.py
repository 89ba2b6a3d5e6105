"""``recrm_sales.service(crm)``: the plugin's services in one place."""

from __future__ import annotations

from recrm_core import CRM

from .deals import Deals
from .inventory import Inventory
from .payments import Payments
from .tickets import Tickets


class Sales:
    """The sales plugin's SDK: ``units`` (the 销控表 and holds), ``tickets`` (认筹),
    ``deals`` (认购, 签约, 交房 and changes) and ``payments`` (schedules, receipts,
    receivables)."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.units = Inventory(crm)
        self.tickets = Tickets(crm)
        self.deals = Deals(crm)
        self.payments = Payments(crm)


def service(crm: CRM) -> Sales:
    return Sales(crm)
