"""Found by probing the API as a new user: an analyst's key listed every agency's
registrations and commission entries with the mobiles and names in full, while the
core's rule (docs/access.md) is that an analyst never sees a customer's identifiers
in full — only partners were masked. Then the office: a manager and every
consultant read every registration's mobile in full, while the core shows a manager
customers masked until they disclose one, and a consultant only their own customers
in full; each now reads a registration's mobile and name as the core shows them its
customer."""

from __future__ import annotations

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels.commission import Commissions

from recrm_core import CRM, Actor
from recrm_core.testing import ApiClients

pytestmark = pytest.mark.recrm_plugins("channels")

MOBILE = "13812345678"
ANALYST = Actor(staff_id="an1", role="analyst")


def _visited(crm: CRM) -> int:
    channels = setup_agencies(crm)
    Commissions(crm).set_terms("A", PROJECT, percent="1.5", visit_reward="200")
    channels.register("a1", PROJECT, MOBILE, "王伟")
    channels.visit(PROJECT, MOBILE)
    [customer] = crm.customers.find(mobile=MOBILE)
    return customer.id


def test_an_analyst_reads_registrations_and_commissions_masked(crm: CRM) -> None:
    from recrm_channels import service

    cid = _visited(crm)
    [reg] = service(crm).registrations(actor=ANALYST)
    assert (reg.mobile, reg.name, reg.customer_id) == ("138****5678", "王*", cid)
    [entry] = Commissions(crm).entries(actor=ANALYST)
    assert entry.mobile == "138****5678"


@pytest.mark.parametrize(("actor", "full"), [
    (None, True),
    (Actor(staff_id="boss", role="admin"), True),
    (Actor(staff_id="m1", role="manager"), False),  # masked until they disclose
    (Actor(staff_id="li", role="sales"), True),  # the customer's owner
    (Actor(staff_id="wang", role="sales"), False),  # another consultant's customer
])
def test_the_office_reads_a_registration_as_the_core_shows_its_customer(
        crm: CRM, actor: Actor | None, full: bool) -> None:
    from recrm_channels import service

    cid = _visited(crm)
    crm.customers.add({"mobile": MOBILE, "project": PROJECT, "owner_staff": "li"})
    assert crm.access.can_see(actor, crm.customers.get(cid)) == ("full" if full else "masked")
    [reg] = service(crm).registrations(actor=actor)
    [entry] = Commissions(crm).entries(actor=actor)
    [registration] = [r.registration for r in [service(crm).explain(reg.id, actor=actor)]]
    shown = ("+86" + MOBILE, "王伟") if full else ("138****5678", "王*")
    assert (reg.mobile, reg.name) == shown
    assert (registration.mobile, registration.name) == shown
    assert entry.mobile == shown[0]


def test_an_analysts_key_over_http(crm: CRM, api_client: ApiClients) -> None:
    _visited(crm)
    analyst = api_client("analyst", staff="an1")
    for path in ("/v1/channels/registrations", "/v1/channels/commissions"):
        got = analyst.get(path)
        assert got.status_code == 200, got.text
        assert MOBILE not in got.text and "王伟" not in got.text
        assert "138****5678" in got.text
