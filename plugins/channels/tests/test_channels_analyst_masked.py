"""Found by probing the API as a new user: an analyst's key listed every agency's
registrations and commission entries with the mobiles and names in full, while the
core's rule (docs/access.md) is that an analyst never sees a customer's identifiers
in full — only partners were masked. Office roles are unchanged."""

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
    # the office still reads them whole (who sees what there is unchanged)
    [office] = service(crm).registrations(actor=Actor(staff_id="m1", role="manager"))
    assert office.mobile == "+86" + MOBILE
    assert Commissions(crm).entries(actor=Actor(staff_id="m1", role="manager"))[0].mobile \
        == "+86" + MOBILE


def test_an_analysts_key_over_http(crm: CRM, api_client: ApiClients) -> None:
    _visited(crm)
    analyst = api_client("analyst", staff="an1")
    for path in ("/v1/channels/registrations", "/v1/channels/commissions"):
        got = analyst.get(path)
        assert got.status_code == 200, got.text
        assert MOBILE not in got.text and "王伟" not in got.text
        assert "138****5678" in got.text
