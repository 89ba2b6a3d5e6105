"""A project renamed (``recrm projects rename``) keeps its agencies' registrations, rule
versions, commission terms, ledger and disputes: the plugin keeps project codes in its
tables and moves them in ``recrm_project_renamed``.

Before, they stayed under the old code, which no project has: another agency could
register a mobile already registered at the project (two active registrations for one
mobile and project), the project's rules and terms read as unset, and the unit signed
again after the rename earned a second deal commission."""

from __future__ import annotations

from decimal import Decimal

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import RegistrationRefused
from recrm_channels.commission import Commissions

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("channels")

MOBILE = "13812345678"
NEW = "XL2B"


def test_a_renamed_project_keeps_its_registrations(crm: CRM) -> None:
    channels = setup_agencies(crm)
    channels.register("a1", PROJECT, MOBILE)
    crm.projects.rename(PROJECT, NEW)
    # the mobile stays the agency's: another agency is refused at the project's new code
    with pytest.raises(RegistrationRefused, match="already registered by another agency"):
        channels.register("b1", NEW, MOBILE)
    active = [(r.project, r.agency) for r in channels.registrations()
              if r.state not in ("rejected", "expired")]
    assert active == [(NEW, "A")]
    # and the visit at the new code confirms it
    channels.visit(NEW, MOBILE)
    assert [r.state for r in channels.registrations() if r.agency == "A"] == ["confirmed"]


def test_a_renamed_project_keeps_its_rules_terms_and_ledger(crm: CRM) -> None:
    channels = setup_agencies(crm)
    channels.set_rules(PROJECT, {"registration_valid_hours": 48})
    money = Commissions(crm)
    money.set_terms("A", PROJECT, percent="1", visit_reward="200", subscription_reward="0")
    channels.register("a1", PROJECT, MOBILE)
    channels.visit(PROJECT, MOBILE)
    [customer] = crm.customers.find(mobile=MOBILE)
    crm.customers.set_stage(customer.id, "buyer", PROJECT, unit="3-1201", amount=2_000_000)

    crm.projects.rename(PROJECT, NEW)

    assert [v.rules.registration_valid_hours for v in channels.rules(NEW)] == [72, 48]
    assert [(t.agency, t.project) for t in money.terms()] == [("A", NEW)]
    # the same contract step again earns nothing more: the deal's entry is found
    crm.customers.set_stage(customer.id, "buyer", NEW, unit="3-1201", amount=2_000_000)
    entries = money.entries()
    assert [(e.kind, e.project, e.amount) for e in entries] == [
        ("visit", NEW, Decimal("200.00")), ("deal", NEW, Decimal("20000.00"))]
