"""Found by probing the HTTP API with a consultant's key: ``POST
/v1/customers/reassign {"from_staff": "colleague", "to_staff": "me"}`` (and ``recrm
--as sales:me customers reassign colleague me``) moved every customer of a colleague
to the caller, who then saw them in full as their owner -- the masking undone with one
request. Reassigning is for admins and managers, as releasing to the pool is."""

from __future__ import annotations

import pytest

from recrm_core import CRM, Actor, Forbidden
from recrm_core.testing import ApiClients, RecrmCliRunner, problem_of

MOBILE = "13812345678"


@pytest.fixture
def owned(crm: CRM) -> int:
    for staff, role in (("s1", "sales"), ("s2", "sales"), ("kf1", "service"),
                        ("m1", "manager")):
        crm.directory.add_staff({"id": staff, "name": staff, "role": role})
    return crm.customers.add({"name": "王伟", "mobile": MOBILE, "project": "XL2",
                              "owner_staff": "s1"}).customer.id


def _owner(crm: CRM, cid: int) -> str | None:
    return crm.customers.get(cid).projects[0].owner_staff


def test_a_consultants_key_cannot_take_a_colleagues_customers(
        api_client: ApiClients, crm: CRM, owned: int) -> None:
    for role, staff in (("sales", "s2"), ("service", "kf1")):
        client = api_client(role, staff=staff)
        taken = client.post("/v1/customers/reassign",
                            json={"from_staff": "s1", "to_staff": staff})
        assert "reassign" in problem_of(taken, 403)["detail"]
        assert _owner(crm, owned) == "s1"
        view = client.get(f"/v1/customers/{owned}").json()
        assert view["customer"]["masked"] is True
    assert not [e for e in crm.audit.entries() if e.action == "reassign"]
    moved = api_client("manager", staff="m1").post(
        "/v1/customers/reassign", json={"from_staff": "s1", "to_staff": "s2"})
    assert moved.status_code == 200 and moved.json() == {"moved": 1}
    assert _owner(crm, owned) == "s2"


def test_the_sdk_and_the_cli_refuse_it_alike(crm: CRM, cli_runner: RecrmCliRunner,
                                             owned: int) -> None:
    with pytest.raises(Forbidden):
        crm.customers.reassign("s1", "s2", actor=Actor(staff_id="s2", role="sales"))
    refused = cli_runner.invoke("--as", "sales:s2", "customers", "reassign", "s1", "s2")
    assert refused.exit_code == 1, refused.stderr
    assert "may not reassign customers" in refused.stderr
    assert _owner(crm, owned) == "s1"
    done = cli_runner.invoke("--as", "admin:a1", "customers", "reassign", "s1", "s2")
    assert done.exit_code == 0, done.stderr
    assert _owner(crm, owned) == "s2"
