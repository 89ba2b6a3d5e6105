"""``/v1/channels/registrations`` for agencies' partner keys: register as the key's
agent, list the own agency's registrations only, masked; a refusal is 409 with the
stored registration's id."""

from __future__ import annotations

import pytest
from channels_testkit import PROJECT, setup_agencies

from recrm_core import CRM
from recrm_core.testing import ApiClients, problem_of

pytestmark = pytest.mark.recrm_plugins("channels")


def test_partner_registers_and_sees_only_its_agency_masked(crm: CRM,
                                                           api_client: ApiClients) -> None:
    setup_agencies(crm)
    a1 = api_client("partner", staff="a1")
    b1 = api_client("partner", staff="b1")
    made = a1.post("/v1/channels/registrations",
                   json={"project": PROJECT, "mobile": "13812345678", "name": "王伟"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["agent"], body["agency"], body["state"]) == ("a1", "A", "pending")
    assert body["mobile"] == "138****5678" and body["time_left_seconds"] > 0
    b_own = b1.post("/v1/channels/registrations",
                    json={"project": PROJECT, "mobile": "13900000009", "name": "李娜"})
    assert b_own.status_code == 201
    refused = problem_of(b1.post("/v1/channels/registrations",
                                 json={"project": PROJECT, "mobile": "13812345678"}), 409)
    assert isinstance(refused["registration"], int)
    assert "a1" not in refused["detail"] and "13812345678" not in refused["detail"]
    # the customer's email and ID card reach the core when they visit
    crm.customers.add({"mobile": "13812345678", "email": "wang@example.com",
                       "id_card": "11010519491231002X"})
    for client, agency in ((a1, "A"), (b1, "B")):
        listed = client.get("/v1/channels/registrations")
        assert listed.status_code == 200
        text = listed.text
        for secret in ("13812345678", "13900000009", "8613812345678", "wang@example.com",
                       "11010519491231002X", "王伟", "李娜"):
            assert secret not in text
        assert {r["agency"] for r in listed.json()} == {agency}


def test_other_roles(crm: CRM, api_client: ApiClients) -> None:
    setup_agencies(crm)
    analyst = api_client("analyst", staff="an1")
    problem_of(analyst.post("/v1/channels/registrations",
                            json={"project": PROJECT, "mobile": "13812345678"}), 403)
    stranger = api_client("partner", staff="p9")  # a partner who is no agent
    problem_of(stranger.get("/v1/channels/registrations"), 403)
    admin = api_client("admin")
    problem_of(admin.post("/v1/channels/registrations",
                          json={"project": PROJECT, "mobile": "13812345678"}), 422)
