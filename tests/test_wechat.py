"""WeChat unionids: an identity kind beside mobile and ID card (issue 9).

A unionid alone makes a record (a mini-program lead), matches exactly, merges like a
mobile and conflicts like one; it reaches the import, ``customers find --wechat``,
the 360 view, segments and the hook payloads. Both backends; the race at the end
runs in several processes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from recrm_core import CRM, hookimpl
from recrm_core.errors import IdentityConflict, InvalidInput
from recrm_core.identity import IdentityError, id_card_check_character, normalise_wechat_unionid
from recrm_core.models import CustomerIn, ImportedCustomer, RejectedRow, first_error
from recrm_core.tables import CustomerRow, IdentityRow
from recrm_core.testing import HookRecorder, RecrmCliRunner, StartLine, run_together
from recrm_core.xlsxsource import STORED_AS_NUMBER

# What WeChat issues: 28 characters of base64url.
U1 = "oAbCdEfGhIjKlMnOpQrStUvWx_12"
U2 = "o6_bmasdasdsad6_2sgVt7hMZOPf"
U3 = "oZ-9yXwVuTsRqPoNmLkJiHgFeD34"
M1, M2 = "13812345678", "13912345678"
E1, E2 = "+8613812345678", "+8613912345678"


def card(body: str) -> str:
    return body + id_card_check_character(body)


CARD_F = card("11010519491231002")  # female, 1949-12-31
CARD_M = card("11010519800101001")  # male, 1980-01-01


# -- the key itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (U1, U1),
        (f"  {U1}\t", U1),
        ("ｏＡｂＣｄＥｆＧｈＩｊＫｌＭｎＯｐＱｒＳｔＵｖＷｘ＿１２", U1),  # full-width: NFKC
        (f"\ufeff{U1}\u200b", U1),  # a BOM and a zero-width space from a copy
        (f"\u202a{U1[:10]}\u200d{U1[10:]}\u202c ", U1),  # LRE/PDF marks, a joiner inside
        ("a" * 16, "a" * 16),
        ("Z" * 64, "Z" * 64),
    ],
)
def test_unionid_normalised(raw: str, expected: str) -> None:
    assert normalise_wechat_unionid(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "WeChat unionid is empty"),
        ("\u200b ", "WeChat unionid is empty"),
        ("a" * 15, "WeChat unionid must have 16 to 64 characters, got 15"),
        ("a" * 65, "WeChat unionid must have 16 to 64 characters, got 65"),
        (M1, "WeChat unionid must have 16 to 64 characters, got 11"),
        (f"{U1[:14]} {U1[14:]}", "WeChat unionid contains U+0020; it holds only letters, "
                                 "digits, '-' and '_'"),
        (f"+86{U1}", "WeChat unionid contains '+'; it holds only letters, digits, '-' and '_'"),
        ("王伟王伟王伟王伟王伟王伟王伟王伟",
         "WeChat unionid contains '王'; it holds only letters, digits, '-' and '_'"),
        (U1[:27] + "=", "WeChat unionid contains '='; it holds only letters, digits, '-' and '_'"),
    ],
)
def test_bad_unionid_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(IdentityError) as info:
        normalise_wechat_unionid(raw)
    assert info.value.field == "wechat_unionid"
    assert info.value.reason == reason


def test_case_is_kept_because_the_match_is_exact() -> None:
    assert normalise_wechat_unionid(U1.upper()) == U1.upper() != U1


def test_record_accepts_one_or_many_unionids_and_nothing_else_needed() -> None:
    one = CustomerIn.model_validate({"wechat_unionid": U1, "name": "王伟"})
    assert one.wechat_unionids == [U1] and one.mobiles == [] and one.id_card is None
    many = CustomerIn.model_validate(
        {"wechat_unionid": U1, "wechat_unionids": [U2, f" {U1} ", ""]})
    assert many.wechat_unionids == [U1, U2]
    with pytest.raises(ValidationError) as info:
        CustomerIn.model_validate({"mobile": M1, "wechat_unionids": [U1, "short"]})
    assert first_error(info.value) == (
        "wechat_unionid", "WeChat unionid must have 16 to 64 characters, got 5")


# -- add, update, find, merge -----------------------------------------------------------------


def identity_rows(crm: CRM) -> list[tuple[int, str, str]]:
    with crm.unit_of_work(readonly=True) as uow:
        return [tuple(r) for r in uow.session.execute(  # type: ignore[misc]
            select(IdentityRow.customer_id, IdentityRow.kind, IdentityRow.value)
            .order_by(IdentityRow.id))]


def test_unionid_alone_creates_a_customer(crm: CRM, hook_recorder: HookRecorder) -> None:
    added = crm.customers.add({"wechat_unionid": U1, "name": "小程序用户"})
    assert added.created
    customer = added.customer
    assert (customer.wechat_unionids, customer.mobiles, customer.id_card) == ([U1], [], None)
    assert identity_rows(crm) == [(customer.id, "wechat", U1)]
    (created,) = hook_recorder.named("recrm_customer_created")
    assert created.kwargs["customer"].wechat_unionids == [U1]


def test_same_unionid_with_a_mobile_merges(crm: CRM, hook_recorder: HookRecorder) -> None:
    first = crm.customers.add({"wechat_unionid": U1, "name": "小程序用户"}).customer
    again = crm.customers.add({"wechat_unionid": f" {U1}\u200b", "mobile": M1,
                               "email": "wang@example.com"})
    assert not again.created and again.changed
    assert again.customer.id == first.id
    assert again.customer.mobiles == [E1] and again.customer.wechat_unionids == [U1]
    assert again.customer.name == "小程序用户" and again.customer.email == "wang@example.com"
    (updated,) = hook_recorder.named("recrm_customer_updated")
    assert updated.kwargs["changes"]["mobiles"] == ([], [E1])
    assert "wechat_unionids" not in updated.kwargs["changes"]
    # Now the mobile alone finds the customer, and a second platform's unionid joins it.
    third = crm.customers.add({"mobile": M1, "wechat_unionid": U2})
    assert third.customer.id == first.id and third.customer.wechat_unionids == [U1, U2]
    assert hook_recorder.named("recrm_customer_updated")[-1].kwargs["changes"][
        "wechat_unionids"] == ([U1], [U1, U2])
    assert crm.customers.count() == 1


def test_a_matching_record_that_adds_nothing_changes_nothing(crm: CRM) -> None:
    crm.customers.add({"wechat_unionid": U1, "mobile": M1})
    again = crm.customers.add({"wechat_unionid": U1})
    assert not again.created and not again.changed


def test_match_is_exact(crm: CRM) -> None:
    a = crm.customers.add({"wechat_unionid": U1}).customer
    b = crm.customers.add({"wechat_unionid": U1.upper()}).customer
    assert a.id != b.id


def test_unionid_of_one_customer_and_mobile_of_another_conflict(crm: CRM) -> None:
    a = crm.customers.add({"wechat_unionid": U1}).customer
    b = crm.customers.add({"mobile": M2}).customer
    with pytest.raises(IdentityConflict) as info:
        crm.customers.add({"mobile": M2, "wechat_unionid": U1})
    assert str(info.value) == (
        f"mobile/WeChat unionid belong to different customers ({b.id} and {a.id})")
    assert U1 not in str(info.value)  # the reason names the kinds, never the unionid
    assert identity_rows(crm) == [(a.id, "wechat", U1), (b.id, "mobile", E2)]


def test_two_unionids_of_two_customers_conflict(crm: CRM) -> None:
    a = crm.customers.add({"wechat_unionid": U1}).customer
    b = crm.customers.add({"wechat_unionid": U2}).customer
    with pytest.raises(IdentityConflict, match=rf"WeChat unionids belong to different customers "
                                               rf"\({a.id} and {b.id}\)"):
        crm.customers.add({"wechat_unionids": [U1, U2]})


def test_other_id_card_than_the_customer_the_unionid_matched_conflicts(crm: CRM) -> None:
    a = crm.customers.add({"wechat_unionid": U1, "id_card": CARD_F}).customer
    with pytest.raises(IdentityConflict) as info:
        crm.customers.add({"wechat_unionid": U1, "id_card": CARD_M})
    assert str(info.value) == (
        f"ID card differs from the ID card of customer {a.id} matched by WeChat unionid")


def test_update_adds_unionids_and_refuses_another_customers(
    crm: CRM, hook_recorder: HookRecorder
) -> None:
    a = crm.customers.add({"mobile": M1}).customer
    b = crm.customers.add({"wechat_unionid": U2}).customer
    updated = crm.customers.update(a.id, {"add_wechat_unionids": [U1, U1.lower()]})
    assert updated.wechat_unionids == [U1, U1.lower()]
    assert hook_recorder.named("recrm_customer_updated")[-1].kwargs["changes"] == {
        "wechat_unionids": ([], [U1, U1.lower()])}
    # Adding what it already holds changes nothing and fires nothing.
    calls = len(hook_recorder.calls)
    assert crm.customers.update(a.id, {"add_wechat_unionids": [U1]}) == updated
    assert len(hook_recorder.calls) == calls
    with pytest.raises(IdentityConflict) as info:
        crm.customers.update(a.id, {"add_wechat_unionids": [U3, U2], "name": "x"})
    assert str(info.value) == f"WeChat unionid belongs to customer {b.id}"
    assert crm.customers.get(a.id).wechat_unionids == [U1, U1.lower()]  # rolled back
    assert crm.customers.get(a.id).name is None
    with pytest.raises(InvalidInput) as bad:
        crm.customers.update(a.id, {"add_wechat_unionids": ["x"]})
    assert bad.value.field == "wechat_unionid"


def test_find_by_unionid(crm: CRM) -> None:
    a = crm.customers.add({"wechat_unionid": U1, "mobile": M1}).customer
    assert [c.id for c in crm.customers.find(wechat_unionid=f" {U1} ")] == [a.id]
    assert crm.customers.find(wechat_unionid=U2) == []
    with pytest.raises(InvalidInput) as info:
        crm.customers.find(wechat_unionid="short")
    assert (info.value.field, info.value.reason) == (
        "wechat_unionid", "WeChat unionid must have 16 to 64 characters, got 5")
    with pytest.raises(InvalidInput, match="exactly one"):
        crm.customers.find(wechat_unionid=U1, mobile=M1)


def test_merge_moves_the_unionids(crm: CRM) -> None:
    a = crm.customers.add({"mobile": M1, "wechat_unionid": U1}).customer
    b = crm.customers.add({"wechat_unionids": [U2, U3]}).customer
    merged = crm.customers.merge(a.id, b.id)
    assert merged.wechat_unionids == [U1, U2, U3]
    assert [c.id for c in crm.customers.find(wechat_unionid=U3)] == [a.id]
    # The duplicate's unionid now brings records to the survivor.
    assert crm.customers.add({"wechat_unionid": U2, "mobile": M2}).customer.id == a.id


def test_view_lists_unionids_among_identities(crm: CRM) -> None:
    a = crm.customers.add({"mobile": M1, "wechat_unionids": [U1, U2]}).customer
    view = crm.customers.view(a.id)
    assert view.customer.wechat_unionids == [U1, U2]
    assert [(i.kind, i.value) for i in view.identities] == [
        ("mobile", E1), ("wechat", U1), ("wechat", U2)]


def test_segment_field(crm: CRM) -> None:
    a = crm.customers.add({"mobile": M1, "wechat_unionid": U1}).customer
    b = crm.customers.add({"wechat_unionid": U2}).customer
    crm.customers.add({"mobile": M2})

    def ids(op: str, value: Any) -> list[int]:
        return sorted(c.id for c in crm.segments.iter_customers(
            {"field": "wechat_unionid", "op": op, "value": value}))

    assert ids("is_null", False) == [a.id, b.id]  # known on WeChat
    assert ids("eq", f" {U2}\u200b") == [b.id]
    assert ids("in", [U1, U2]) == [a.id, b.id]
    assert len(ids("ne", U1)) == 2
    with pytest.raises(InvalidInput, match="16 to 64 characters"):
        crm.segments.count({"field": "wechat_unionid", "op": "eq", "value": "short"})
    with pytest.raises(InvalidInput, match="contains"):
        crm.segments.count({"field": "wechat_unionid", "op": "contains", "value": "oA"})


# -- import -----------------------------------------------------------------------------------


def import_text(crm: CRM, tmp_path: Path, text: str, **kwargs: Any) -> tuple[Any, list[Any]]:
    path = tmp_path / "leads.csv"
    path.write_text(text, encoding="utf-8")
    rejected: list[RejectedRow] = []
    result = crm.importer.import_csv(path, on_reject=rejected.append, **kwargs)
    return result, rejected


@pytest.mark.parametrize("header", ["wechat_unionid", "微信UnionID", " WeChat-UnionID ",
                                    "微信unionid"])
def test_import_header(crm: CRM, tmp_path: Path, header: str) -> None:
    result, rejected = import_text(crm, tmp_path, f"姓名,{header}\n小程序用户,{U1}\n")
    assert (result.created, rejected) == (1, [])
    (found,) = crm.customers.find(wechat_unionid=U1)
    assert found.name == "小程序用户" and found.mobiles == []


@pytest.mark.recrm_settings(import_batch_size=2)
def test_import_resolves_unionids_like_mobiles(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    imported: list[ImportedCustomer] = []

    class Watcher:
        @hookimpl
        def recrm_customers_imported(self, records: list[ImportedCustomer]) -> None:
            imported.extend(records)

    register_plugin(Watcher())
    a = crm.customers.add({"wechat_unionid": U3}).customer
    b = crm.customers.add({"mobile": M2}).customer
    errors = tmp_path / "errors.csv"
    text = (
        "姓名,手机号,微信UnionID\n"
        f"小程序用户,,{U1}\n"          # 1 a unionid alone: created
        f",{M1},{U1}\n"                # 2 the same unionid with a mobile: merged (same batch)
        f"王伟,{M1},\n"                 # 3 the mobile alone now finds it: merged (next batch)
        f",{M2},{U3}\n"                # 4 unionid of a, mobile of b: conflict
        f"坏,,oA+bad\n"                # 5 an invalid unionid: rejected, named
        f",{M1},{U2}\n"                # 6 a second platform's unionid joins the customer
        "只有名字,,\n"                  # 7 no key at all
    )
    result, rejected = import_text(crm, tmp_path, text, errors_path=errors)
    assert (result.rows, result.created, result.merged, result.rejected) == (7, 1, 3, 3)
    assert [(r.row, r.field) for r in rejected] == [
        (4, "mobile,id_card,wechat_unionid"), (5, "wechat_unionid"), (7, "mobile,id_card")]
    assert rejected[0].reason == (
        f"mobile/WeChat unionid belong to different customers ({b.id} and {a.id})")
    assert rejected[1].reason == (
        "WeChat unionid contains '+'; it holds only letters, digits, '-' and '_'")
    assert rejected[2].reason == "no mobile, ID card or WeChat unionid"
    lines = list(csv.reader(io.StringIO(errors.read_text(encoding="utf-8-sig"))))
    assert [line[:2] for line in lines[1:]] == [
        ["4", "mobile,id_card,wechat_unionid"], ["5", "wechat_unionid"], ["7", "mobile,id_card"]]

    (new,) = crm.customers.find(wechat_unionid=U1)
    assert (new.name, new.mobiles, new.wechat_unionids) == ("小程序用户", [E1], [U1, U2])
    assert crm.customers.get(a.id).mobiles == [] and crm.customers.get(b.id).wechat_unionids == []

    assert [(r.customer_id, r.created, r.changed, r.rows) for r in imported] == [
        (new.id, True, ["mobiles", "name", "wechat_unionids"], [1, 2]),
        (new.id, False, [], [3]),
        (new.id, False, ["wechat_unionids"], [6]),
    ]

    # A re-run creates nothing and changes nothing.
    imported.clear()
    again, _ = import_text(crm, tmp_path, text)
    assert all(not r.created and r.changed == [] for r in imported)
    assert (again.created, again.merged, again.rejected) == (0, 4, 3)
    assert crm.customers.count() == 3


def test_import_conflict_within_one_batch_names_the_rows(crm: CRM, tmp_path: Path) -> None:
    text = f"mobile,wechat_unionid\n{M1},\n,{U1}\n{M1},{U1}\n"
    result, rejected = import_text(crm, tmp_path, text)
    assert (result.created, result.rejected) == (2, 1)
    (conflict,) = rejected
    assert (conflict.row, conflict.field) == (3, "mobile,id_card,wechat_unionid")
    assert conflict.reason == ("mobile/WeChat unionid belong to different customers "
                               "(the new customer of row 1 and the new customer of row 2)")


def test_workbook_column_and_a_number_cell(crm: CRM, tmp_path: Path) -> None:
    """In a workbook the column reads as in a CSV; a unionid typed as a number has
    lost digits (or never was one), so its row is rejected as an ID card's would be."""
    path = tmp_path / "小程序线索.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in (["五月小程序线索"], ["姓名", "微信UnionID", "手机号"],
                ["小程序用户", U1, None], ["王伟", 12345678901234567, M1]):
        ws.append(row)
    wb.save(path)
    rejected: list[RejectedRow] = []
    result = crm.importer.import_file(path, on_reject=rejected.append)
    assert (result.rows, result.created, result.rejected) == (2, 1, 1)
    (bad,) = rejected
    assert (bad.row, bad.field, bad.sheet_row) == (2, "wechat_unionid", 4)
    assert bad.reason == STORED_AS_NUMBER
    assert [c.name for c in crm.customers.find(wechat_unionid=U1)] == ["小程序用户"]


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_add_find_show(cli_runner: RecrmCliRunner, crm: CRM) -> None:
    added = cli_runner.invoke("customers", "add", "--name", "小程序用户", "--wechat", U1,
                              "--wechat", U2, "--json")
    assert added.exit_code == 0, added.stderr
    customer = json.loads(added.stdout)["customer"]
    assert customer["wechat_unionids"] == [U1, U2]

    found = cli_runner.invoke("customers", "find", "--wechat", f" {U2} ", "--json")
    assert found.exit_code == 0, found.stderr
    assert [c["id"] for c in json.loads(found.stdout)] == [customer["id"]]
    table = cli_runner.invoke("customers", "find", "--wechat", U1)
    assert table.exit_code == 0 and U1 in table.stdout
    none = cli_runner.invoke("customers", "find", "--wechat", U3, "--json")
    assert none.exit_code == 0 and json.loads(none.stdout) == []

    shown = cli_runner.invoke("customers", "show", str(customer["id"]))
    assert shown.exit_code == 0, shown.stderr
    assert "WeChat unionids" in shown.stdout and U1 in shown.stdout and U2 in shown.stdout
    view = json.loads(cli_runner.invoke("customers", "show", str(customer["id"]),
                                        "--json").stdout)
    assert [(i["kind"], i["value"]) for i in view["identities"]] == [
        ("wechat", U1), ("wechat", U2)]

    updated = cli_runner.invoke("customers", "update", str(customer["id"]), "--add-wechat",
                                U3, "--add-mobile", M1, "--json")
    assert updated.exit_code == 0, updated.stderr
    assert json.loads(updated.stdout)["wechat_unionids"] == [U1, U2, U3]


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("customers", "find", "--wechat", "short"), "--wechat"),
        (("customers", "add", "--wechat", "o+bad-unionid-value"), "--wechat"),
        (("customers", "update", "1", "--add-wechat", "short"), "--add-wechat"),
    ],
)
def test_cli_bad_unionid_is_a_usage_error(
    cli_runner: RecrmCliRunner, crm: CRM, args: tuple[str, ...], hint: str
) -> None:
    crm.customers.add({"mobile": M1})
    result = cli_runner.invoke(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and hint in result.stderr
    assert "WeChat unionid" in result.stderr


def test_cli_conflict_exits_1(cli_runner: RecrmCliRunner, crm: CRM) -> None:
    crm.customers.add({"wechat_unionid": U1})
    crm.customers.add({"mobile": M1})
    result = cli_runner.invoke("customers", "add", "--mobile", M1, "--wechat", U1)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "belong to different customers" in result.stderr
    assert "Traceback" not in result.stderr and U1 not in result.stderr


def test_cli_find_wants_exactly_one_key(cli_runner: RecrmCliRunner) -> None:
    result = cli_runner.invoke("customers", "find", "--wechat", U1, "--mobile", M1)
    assert result.exit_code == 2
    assert "give exactly one of --mobile, --id-card, --email, --wechat" in result.stderr


# -- several processes, one new unionid -------------------------------------------------------

WORKERS = 4


def _add_worker(url: str, record: dict[str, Any], start: StartLine) -> tuple[int, bool]:
    crm = CRM(database_url=url)
    try:
        start.wait()
        added = crm.customers.add(record)
        return added.customer.id, added.created
    finally:
        crm.close()


@pytest.mark.parametrize("round_", range(2))
def test_processes_adding_one_new_unionid_end_with_one_customer(
    crm: CRM, recrm_database_url: str, round_: int
) -> None:
    unionid = f"oRace{round_:02d}AbCdEfGhIjKlMnOpQrS"
    # Different spellings and different extra data: only the unionid is shared.
    records = [
        {"wechat_unionid": unionid, "name": "小程序用户"},
        {"wechat_unionid": f" {unionid}\u200b", "mobile": M1},
        {"wechat_unionids": [unionid, U2], "email": "w@example.com"},
        {"wechat_unionid": unionid, "source": "mini-program"},
    ][:WORKERS]
    results = run_together(_add_worker, [(recrm_database_url, r) for r in records])
    assert len({cid for cid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    (customer,) = crm.customers.find(wechat_unionid=unionid)
    # every loser merged into the winner: all four records' data is there
    assert sorted(customer.wechat_unionids) == sorted([unionid, U2])
    assert customer.mobiles == [E1] and customer.name == "小程序用户"
    assert customer.email == "w@example.com"
    with crm.unit_of_work(readonly=True) as uow:
        assert uow.session.scalar(
            select(func.count()).select_from(CustomerRow)
            .where(CustomerRow.merged_into.is_(None))) == 1
        assert uow.session.scalar(
            select(func.count()).select_from(IdentityRow)
            .where(IdentityRow.kind == "wechat", IdentityRow.value == unionid)) == 1
