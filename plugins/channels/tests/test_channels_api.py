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


def test_disputes_through_the_api(crm: CRM, api_client: ApiClients) -> None:
    setup_agencies(crm)
    a1 = api_client("partner", staff="a1")
    b1 = api_client("partner", staff="b1")
    held = a1.post("/v1/channels/registrations",
                   json={"project": PROJECT, "mobile": "13812345678"}).json()
    lost = problem_of(b1.post("/v1/channels/registrations",
                              json={"project": PROJECT, "mobile": "13812345678"}), 409)
    # a partner cannot reach another agency's registration, even by id
    problem_of(b1.post("/v1/channels/disputes",
                       json={"registration": held["id"], "note": "ours"}), 404)
    opened = b1.post("/v1/channels/disputes",
                     json={"registration": lost["registration"], "note": "we came first"})
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    problem_of(b1.post("/v1/channels/disputes",
                       json={"registration": lost["registration"], "note": "again"}), 409)
    problem_of(b1.post("/v1/channels/disputes",
                       json={"registration": lost["registration"], "note": ""}), 422)
    assert [d["id"] for d in b1.get("/v1/channels/disputes").json()] == [dispute["id"]]
    assert a1.get("/v1/channels/disputes").json() == []
    problem_of(b1.post(f"/v1/channels/disputes/{dispute['id']}/resolve",
                       json={"uphold": True, "note": "mine"}), 403)
    manager = api_client("manager", staff="m1")
    ruled = manager.post(f"/v1/channels/disputes/{dispute['id']}/resolve",
                         json={"uphold": True, "note": "phone log"})
    assert ruled.status_code == 200 and ruled.json()["state"] == "upheld"
    mine = {r["id"]: r["state"] for r in b1.get("/v1/channels/registrations").json()}
    assert mine[lost["registration"]] == "confirmed"
    problem_of(manager.post(f"/v1/channels/disputes/{dispute['id']}/resolve",
                            json={"uphold": False, "note": "x"}), 409)


def test_every_partner_endpoint_is_masked_and_own_agency(crm: CRM,
                                                         api_client: ApiClients) -> None:
    """Each GET route under /v1/channels (found in the OpenAPI document, so a new one is
    checked too) with data of both agencies: a partner sees no full mobile, name, email
    or ID card and nothing of the other agency."""
    from recrm_channels import service
    from recrm_channels.commission import Commissions
    from recrm_channels.disputes import Disputes

    channels = setup_agencies(crm)
    Commissions(crm).set_terms("A", PROJECT, fixed="10000", visit_reward="100")
    Commissions(crm).set_terms("B", PROJECT, fixed="10000", visit_reward="100")
    secrets = ("13812345678", "13900000009", "王伟", "李娜", "wang@example.com",
               "11010519491231002X", "li@example.com")
    for agent, mobile, name, email in (("a1", "13812345678", "王伟", "wang@example.com"),
                                       ("b1", "13900000009", "李娜", "li@example.com")):
        channels.register(agent, PROJECT, mobile, name)
        channels.visit(PROJECT, mobile, name=name)
        crm.customers.add({"mobile": mobile, "email": email})
    crm.customers.add({"mobile": "13812345678", "id_card": "11010519491231002X"})
    from recrm_channels import RegistrationRefused

    with pytest.raises(RegistrationRefused) as lost:
        channels.register("b1", PROJECT, "13812345678")
    Disputes(crm).open(lost.value.registration.id, "B's note")
    paths = [path for path, ops in api_client("admin").get("/openapi.json").json()[
        "paths"].items() if path.startswith("/v1/channels/") and "get" in ops]
    assert {"/v1/channels/registrations", "/v1/channels/commissions",
            "/v1/channels/disputes"} <= set(paths)
    a1 = api_client("partner", staff="a1")
    for path in paths:
        assert "{" not in path, f"{path}: give the test a value for its parameter"
        got = a1.get(path)
        assert got.status_code == 200, (path, got.text)
        for secret in secrets:
            assert secret not in got.text, (path, secret)
        for item in got.json():
            assert item["agency"] == "A", (path, item)
    assert service(crm).registrations(agency="A")
