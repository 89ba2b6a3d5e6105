"""More than one unit at a project: a step for another unit at or behind the
customer's stage records that unit's interaction and tells plugins, never moves the
stage back, and is idempotent per unit."""

from __future__ import annotations

import pytest

from recrm_core import CRM, InvalidInput, Refused
from recrm_core.testing import HookRecorder, RecrmCliRunner, StartLine, run_together


def contracts(crm: CRM, cid: int) -> list[tuple[str | None, object]]:
    return sorted((i.data.get("unit"), i.data.get("amount"))
                  for i in crm.interactions.list(cid) if i.kind == "contract")


def test_a_second_unit_is_recorded_and_fires_the_hooks(
    crm: CRM, hook_recorder: HookRecorder
) -> None:
    cid = crm.customers.add({"mobile": "13812345678", "project": "XL2"}).customer.id
    crm.customers.set_stage(cid, "buyer", "XL2", unit="3-1201", amount=2_500_000)
    hook_recorder.calls.clear()
    after = crm.customers.set_stage(cid, "buyer", "XL2", unit="3-1202", amount=2_600_000)
    assert after.stage == "buyer"
    assert contracts(crm, cid) == [("3-1201", 2_500_000), ("3-1202", 2_600_000)]
    (logged,) = hook_recorder.named("recrm_interaction_logged")
    assert logged.kwargs["interaction"].data["unit"] == "3-1202"
    (changed,) = hook_recorder.named("recrm_stage_changed")
    change = changed.kwargs["change"]
    assert (change.old_stage, change.new_stage, change.step, change.unit, change.amount) == (
        "buyer", "buyer", "buyer", "3-1202", 2_600_000)
    assert change.interaction_id == logged.kwargs["interaction"].id

    # The same step for the same unit again: nothing recorded, nothing fired.
    hook_recorder.calls.clear()
    crm.customers.set_stage(cid, "buyer", "XL2", unit="3-1202", amount=2_600_000)
    assert hook_recorder.named("recrm_stage_changed") == []
    assert len(contracts(crm, cid)) == 2


def test_a_step_behind_the_stage_for_another_unit_never_moves_it_back(crm: CRM) -> None:
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    crm.customers.set_stage(cid, "owner", "XL2", unit="3-1201", amount=100)
    after = crm.customers.set_stage(cid, "buyer", "XL2", unit="5-0801", amount=200)
    assert after.stage == "owner"
    assert [p.stage for p in after.projects] == ["owner"]
    assert contracts(crm, cid) == [("5-0801", 200)]
    # Without a unit, moving back is still refused; with --force it still moves.
    with pytest.raises(Refused, match="needs --force"):
        crm.customers.set_stage(cid, "buyer", "XL2")
    assert crm.customers.set_stage(cid, "buyer", "XL2", force=True).stage == "buyer"


def test_the_cli_records_a_second_contract(crm: CRM, cli_runner) -> None:  # type: ignore[no-untyped-def]
    cid = str(crm.customers.add({"mobile": "13812345678"}).customer.id)
    for unit in ("3-1201", "3-1202"):
        done = cli_runner.invoke("customers", "stage", cid, "buyer", "--project", "XL2",
                                 "--unit", unit, "--amount", "1000000")
        assert done.exit_code == 0, done.stderr
    assert [u for u, _ in contracts(crm, int(cid))] == ["3-1201", "3-1202"]


def _sign_worker(url: str, cid: int, unit: str, start: StartLine) -> str:
    crm = CRM(database_url=url)
    try:
        start.wait()
        crm.customers.set_stage(cid, "buyer", "XL2", unit=unit, amount=1_000_000)
        return "ok"
    finally:
        crm.close()


def test_the_same_unit_from_several_offices_at_once_is_recorded_once(
    crm: CRM, recrm_database_url: str
) -> None:
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    crm.customers.set_stage(cid, "buyer", "XL2", unit="3-1201", amount=2_500_000)
    outcomes = run_together(_sign_worker, [(recrm_database_url, cid, "3-1202")] * 4)
    assert outcomes == ["ok"] * 4
    assert contracts(crm, cid) == [("3-1201", 2_500_000), ("3-1202", 1_000_000)]


@pytest.mark.parametrize("amount", [10**12, 99999999999999999999, -1])
def test_an_amount_out_of_range_is_refused_by_the_core(crm: CRM, amount: int) -> None:
    """The amounts' one rule (``values.parse_amount``): a contract amount of 10^12 or
    more, or below 0, is refused before anything is written, whichever plugins are on
    (a plugin refusing it later made the same command succeed or fail by plugin)."""
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    with pytest.raises(InvalidInput, match="amount"):
        crm.customers.set_stage(cid, "owner", "XL2", unit="1-102", amount=amount)
    assert crm.customers.get(cid).projects == []


def test_an_amount_out_of_range_is_a_usage_error_in_the_cli(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    result = cli_runner.invoke("customers", "stage", str(cid), "owner", "--project", "XL2",
                               "--unit", "1-102", "--amount", "99999999999999999999")
    assert result.exit_code == 2, result.stderr
    assert "amount must be below 10^12" in result.stderr
