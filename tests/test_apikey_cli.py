"""``recrm apikey create|list|revoke``: keys shown once, stored hashed, admin only."""

from __future__ import annotations

from sqlalchemy import select

from recrm_core import CRM
from recrm_core.tables import ApiKeyRow
from recrm_core.testing import RecrmCliRunner


def test_create_list_revoke(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    crm.directory.add_staff({"id": "app1", "name": "售楼处小程序", "role": "sales"})
    made = cli_runner.invoke("apikey", "create", "--staff", "app1", "--name", "小程序", "--json")
    assert made.exit_code == 0, made.stderr
    key = made.json()["key"]
    assert key.startswith("rk_") and made.json()["role"] == "sales"
    assert crm.apikeys.authenticate(key)[1].staff_id == "app1"  # type: ignore[index]
    with crm.unit_of_work(readonly=True) as uow:
        stored = uow.session.scalars(select(ApiKeyRow)).one()
    assert key.split("_", 2)[2] not in (stored.secret_hash, stored.prefix)

    plain = cli_runner.invoke("apikey", "create", "--staff", "app1", "--role", "analyst")
    assert plain.exit_code == 0
    assert plain.stdout.strip().startswith("rk_")  # the key alone on stdout, for scripts
    listed = cli_runner.invoke("apikey", "list", "--json").json()
    assert [(k["staff_id"], k["role"]) for k in listed] == [("app1", "sales"),
                                                           ("app1", "analyst")]
    assert all("key" not in k for k in listed)

    revoked = cli_runner.invoke("apikey", "revoke", key[:11])
    assert revoked.exit_code == 0
    assert crm.apikeys.authenticate(key) is None
    again = cli_runner.invoke("apikey", "revoke", key)
    assert again.exit_code == 1 and "revoked already" in again.stderr
    gone = cli_runner.invoke("apikey", "revoke", "rk_nothere")
    assert gone.exit_code == 1 and "no such API key" in gone.stderr


def test_refusals(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    nobody = cli_runner.invoke("apikey", "create", "--staff", "ghost")
    assert nobody.exit_code == 1 and "no such staff 'ghost'" in nobody.stderr
    crm.directory.add_staff({"id": "s1", "name": "Zhang", "role": "sales"})
    role = cli_runner.invoke("apikey", "create", "--staff", "s1", "--role", "boss")
    assert role.exit_code == 2 and "unknown role" in role.stderr
    crm.directory.leave("s1")
    left = cli_runner.invoke("apikey", "create", "--staff", "s1")
    assert left.exit_code == 1 and "has left" in left.stderr
    crm.directory.add_staff({"id": "s2", "name": "Li", "role": "sales"})
    not_admin = cli_runner.invoke("--as", "sales:s2", "apikey", "create", "--staff", "s2")
    assert not_admin.exit_code == 1 and "may not create API keys" in not_admin.stderr
    assert cli_runner.invoke("--as", "manager:s2", "apikey", "list").exit_code == 1
    assert "Traceback" not in not_admin.stderr
