"""The CSV import through the API: encodings, headers, values, resolution, counting,
batches, the errors file, idempotence and the batch hook."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recrm_core import CRM, Customer, RecrmError, hookimpl
from recrm_core.csvsource import (
    SNIFF_BYTES,
    CsvSource,
    EncodingGuess,
    ImportFileError,
    ImportReadError,
    UnknownColumns,
    sniff_encoding,
)
from recrm_core.errors import IdentityConflict, InvalidInput
from recrm_core.identity import id_card_check_character
from recrm_core.importing import ImportStopped, validate_row
from recrm_core.keys import create_key_file
from recrm_core.models import ImportedCustomer, ImportResult, RejectedRow

M1, M2, M3, M4 = "13812345678", "13912345678", "13712345678", "15012345678"
U1, U2 = "oAbCdEfGhIjKlMnOpQrStUvWx_12", "o6_bmasdasdsad6_2sgVt7hMZOPf"  # WeChat unionids


def card(body: str) -> str:
    return body + id_card_check_character(body)


CARD_F = card("11010519491231002")  # female, 1949-12-31
CARD_M = card("11010519800101001")  # male, 1980-01-01


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(
    crm: CRM, tmp_path: Path, text: str, **kwargs: Any
) -> tuple[ImportResult, list[RejectedRow]]:
    rejected: list[RejectedRow] = []
    encoding = kwargs.pop("file_encoding", "utf-8")
    result = crm.importer.import_csv(
        write(tmp_path, text, encoding), on_reject=rejected.append, **kwargs
    )
    return result, rejected


def counts(result: ImportResult) -> tuple[int, int, int, int, int]:
    return (result.rows, result.created, result.merged, result.rejected,
            result.suspected_duplicates)


# -- encodings ------------------------------------------------------------------------------


def test_sniff_bom_utf8_and_gb18030() -> None:
    text = "姓名,手机\n王伟,13812345678\n"
    assert sniff_encoding(b"\xef\xbb\xbf" + text.encode(), True).encoding == "utf-8-sig"
    assert sniff_encoding(text.encode("utf-8"), True).encoding == "utf-8"
    assert sniff_encoding(text.encode("gb18030"), True).encoding == "gb18030"
    assert sniff_encoding(b"name,mobile\n", True).encoding == "utf-8"


@settings(max_examples=200)
@given(st.text(alphabet="王李张伟芳,\n0123abc€😀", min_size=1, max_size=60),
       st.integers(min_value=1, max_value=200))
def test_sniff_tolerates_a_character_cut_at_the_window(text: str, cut: int) -> None:
    data = text.encode("utf-8")
    head = data[:cut]
    complete = len(head) == len(data)
    # Plain ASCII decides nothing until the file ends.
    expected = None if head.isascii() and not complete else "utf-8"
    assert sniff_encoding(head, complete=complete) == EncodingGuess(expected)


def test_window_boundary_inside_a_character(tmp_path: Path) -> None:
    # The 64 KB window ends inside the three-byte 王: still UTF-8, and read whole.
    header = "name,mobile\n"
    filler = "a" * (SNIFF_BYTES - 1 - len(header) - len(f",{M2}\n")) + f",{M2}\n"
    data = (header + filler + f"王伟,{M1}\n").encode()
    assert data[SNIFF_BYTES - 1 : SNIFF_BYTES + 2] == "王".encode()
    assert sniff_encoding(data[:SNIFF_BYTES], complete=False) == EncodingGuess("utf-8")
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    with CsvSource(path) as source:
        assert source.encoding == "utf-8"
        assert list(source)[-1] == (2, {"name": "王伟", "mobile": M1})


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gb18030", b""),
                          ("gbk", b"")]
)
def test_encodings_detected(crm: CRM, tmp_path: Path, encoding: str, bom: bytes) -> None:
    path = tmp_path / "in.csv"
    text = "姓名,手机号\r\n王伟,13812345678\r\n李娜,13912345678\r\n"
    path.write_bytes(bom + text.encode(encoding))
    result = crm.importer.import_csv(path)
    assert counts(result) == (2, 2, 0, 0, 0)
    assert [c.name for c in crm.customers.find(mobile=M1)] == ["王伟"]


def test_encoding_override(crm: CRM, tmp_path: Path) -> None:
    path = write(tmp_path, "name,mobile\n王伟,13812345678\n", "gb18030")
    with pytest.raises(ImportReadError) as info:
        crm.importer.import_csv(path, encoding="utf-8")
    assert info.value.row == 1 and info.value.exit_code == 1
    assert crm.customers.count() == 0
    result = crm.importer.import_csv(path, encoding="GBK")
    assert result.created == 1
    assert crm.customers.find(mobile=M1)[0].name == "王伟"


def test_unknown_encoding_is_a_usage_error(crm: CRM, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError) as info:
        crm.importer.import_csv(write(tmp_path, "mobile\n13812345678\n"), encoding="klingon")
    assert info.value.exit_code == 2


@pytest.mark.recrm_settings(import_batch_size=100)
def test_undecodable_row_after_the_window_stops_there(crm: CRM, tmp_path: Path) -> None:
    # The first 64 KB decide UTF-8; a GB18030 row after them stops the import there.
    lines = ["name,mobile"] + [f"客户-{i},139{i:08d}" for i in range(3000)]
    head = ("\n".join(lines) + "\n").encode()
    assert len(head) > SNIFF_BYTES
    data = head + "王伟,13812345678\n".encode("gb18030") + b"late,13712345678\n"
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    with pytest.raises(ImportReadError) as info:
        crm.importer.import_csv(path)
    assert info.value.row == 3001
    assert "row 3001" in str(info.value) and "3000 row(s)" in str(info.value)
    # Every row before the bad one is committed, the rest is not.
    assert crm.customers.count() == 3000
    assert crm.customers.find(mobile=M3) == []


# -- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "name,mobile,id_card,email,gender,birth_date,source,project,persona,budget,owner_staff",
        " Name , MOBILE ,ID_Card,Email,Gender,Birth Date,SOURCE,Project,Persona,Budget,Owner-Staff",
        "姓名,手机号码,身份证号,邮箱,性别,出生日期,来源,项目,客户类型,预算,置业顾问",
        "客户姓名,联系电话,证件号码,邮箱,性别,出生日期,来源,项目,客户类型,预算,置业顾问,,,",
        "姓名,手机,身份证,邮箱,性别,出生日期,来源,项目,客户类型,预算,置业顾问",
        "ＮＡＭＥ,ｍｏｂｉｌｅ,身份证号,邮箱,性别,出生日期,来源,项目,客户类型,预算,置业顾问",
    ],
)
def test_headers(crm: CRM, tmp_path: Path, header: str) -> None:
    row = f"王伟,{M1},{CARD_M},ww@x.cn,男,1980-01-01,web,XL2,改善,200万,s01"
    result, rejected = run(crm, tmp_path, f"{header}\n{row}\n")
    assert rejected == [] and result.created == 1
    c = crm.customers.find(mobile=M1)[0]
    assert (c.name, c.id_card, c.email, c.gender, c.birth_date, c.persona, c.budget) == (
        "王伟", CARD_M, "ww@x.cn", "male", dt.date(1980, 1, 1), "upgrader", 2_000_000)
    assert [(p.project, p.source, p.owner_staff) for p in c.projects] == [("XL2", "web", "s01")]


def test_unknown_columns_stop_before_writing(crm: CRM, tmp_path: Path) -> None:
    errors = tmp_path / "errors.csv"
    path = write(tmp_path, f"姓名,手机,备注,colour,\n王伟,{M1},VIP,red,\n")
    with pytest.raises(UnknownColumns) as info:
        crm.importer.import_csv(path, errors_path=errors)
    assert info.value.exit_code == 2
    assert info.value.unknown == ["备注", "colour"]
    assert "mobile" in info.value.known and "手机号" in info.value.known
    assert "备注" in str(info.value) and "置业顾问" in str(info.value)
    assert crm.customers.count() == 0
    assert not errors.exists()


def test_empty_header_cell_in_the_middle_is_unknown(crm: CRM, tmp_path: Path) -> None:
    with pytest.raises(UnknownColumns, match="column 2"):
        crm.importer.import_csv(write(tmp_path, f"name,,mobile\n王伟,x,{M1}\n"))


def test_a_field_given_twice_is_refused(crm: CRM, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="both hold name") as info:
        crm.importer.import_csv(write(tmp_path, f"name,姓名,mobile\n王伟,王伟,{M1}\n"))
    assert info.value.exit_code == 2


def test_two_mobile_columns_give_two_mobiles(crm: CRM, tmp_path: Path) -> None:
    result, _ = run(crm, tmp_path, f"姓名,手机,联系电话\n王伟,{M1},{M2}\n李娜,{M3},\n")
    assert result.created == 2
    assert crm.customers.find(mobile=M2)[0].mobiles == ["+86" + M1, "+86" + M2]


@pytest.mark.parametrize("text", ["", "\n\n", ",,,\n"])
def test_no_header(crm: CRM, tmp_path: Path, text: str) -> None:
    with pytest.raises(ImportFileError) as info:
        crm.importer.import_csv(write(tmp_path, text))
    assert info.value.exit_code == 2


def test_unreadable_file(crm: CRM, tmp_path: Path) -> None:
    for path in (tmp_path / "missing.csv", tmp_path):
        with pytest.raises(ImportFileError) as info:
            crm.importer.import_csv(path)
        assert info.value.exit_code == 2


def test_header_only_imports_nothing(crm: CRM, tmp_path: Path) -> None:
    result, _ = run(crm, tmp_path, "name,mobile\n")
    assert counts(result) == (0, 0, 0, 0, 0)


def test_tab_separated(crm: CRM, tmp_path: Path) -> None:
    result, _ = run(crm, tmp_path, f"姓名\t手机\n王伟\t{M1}\n")
    assert result.created == 1 and crm.customers.find(mobile=M1)[0].name == "王伟"


# -- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "raw", "field", "expected"),
    [
        ("gender", "男", "gender", "male"),
        ("gender", "女", "gender", "female"),
        ("gender", "M", "gender", "male"),
        ("gender", "f", "gender", "female"),
        ("gender", "Male", "gender", "male"),
        ("gender", "female", "gender", "female"),
        ("birth_date", "2024-01-02", "birth_date", dt.date(2024, 1, 2)),
        ("birth_date", "2024/1/2", "birth_date", dt.date(2024, 1, 2)),
        ("birth_date", "20240102", "birth_date", dt.date(2024, 1, 2)),
        ("birth_date", "2024年1月2日", "birth_date", dt.date(2024, 1, 2)),
        ("birth_date", "２０２４年１月２日", "birth_date", dt.date(2024, 1, 2)),
        ("budget", "1,200,000", "budget", 1_200_000),
        ("budget", "200万", "budget", 2_000_000),
        ("budget", "1.5万", "budget", 15_000),
        ("budget", "３００万", "budget", 3_000_000),
        ("persona", "first_time", "persona", "first_time"),
        ("persona", "刚需", "persona", "first_time"),
        ("persona", "改善", "persona", "upgrader"),
        ("persona", "投资", "persona", "investor"),
        ("persona", "高端", "persona", "luxury"),
        ("persona", "养老", "persona", "retiree"),
        ("persona", "Retiree", "persona", "retiree"),
        ("email", " Wang.Wei@Example.COM ", "email", "wang.wei@example.com"),
    ],
)
def test_value_formats(
    crm: CRM, tmp_path: Path, column: str, raw: str, field: str, expected: Any
) -> None:
    result, rejected = run(crm, tmp_path, f'mobile,{column}\n{M1},"{raw}"\n')
    assert rejected == [] and result.created == 1
    assert getattr(crm.customers.find(mobile=M1)[0], field) == expected


@pytest.mark.parametrize(
    ("column", "raw", "field"),
    [
        ("budget", "-100", "budget"),
        ("budget", "100-200万", "budget"),
        ("budget", "100~200", "budget"),
        ("budget", "lots", "budget"),
        ("gender", "X", "gender"),
        ("birth_date", "2024-02-30", "birth_date"),
        ("birth_date", "02/01/2024", "birth_date"),
        ("birth_date", "2999-01-01", "birth_date"),
        ("persona", "rich", "persona"),
        ("email", "not-an-email", "email"),
        ("id_card", "110105194912310021", "id_card"),
        ("project", "P" * 65, "project"),
        ("source", "s" * 65, "source"),
        ("owner_staff", "s" * 65, "owner_staff"),
        ("source", "web\x00", "source"),
    ],
)
def test_invalid_values_reject_the_row(
    crm: CRM, tmp_path: Path, column: str, raw: str, field: str
) -> None:
    text = f"name,mobile,{column}\n王伟,{M1},{raw}\n李娜,{M2},\n"
    result, rejected = run(crm, tmp_path, text)
    assert counts(result) == (2, 1, 0, 1, 0)
    assert [(r.row, r.field) for r in rejected] == [(1, field)]
    assert rejected[0].reason
    assert crm.customers.find(mobile=M1) == []


@pytest.mark.parametrize(
    "raw",
    ["13812345678", "138 1234 5678", "138-1234-5678", "(138)1234.5678", "+86 138 1234 5678",
     "0086-13812345678", "8613812345678", "１３８１２３４５６７８", " 13812345678　"],
)
def test_mobile_formats(crm: CRM, tmp_path: Path, raw: str) -> None:
    result, rejected = run(crm, tmp_path, f'手机号\n"{raw}"\n')
    assert rejected == [] and result.created == 1
    assert crm.customers.find(mobile=M1)[0].mobiles == ["+8613812345678"]


@pytest.mark.parametrize("raw", ["1381234567", "1381234567x", "13812345678 ext 12",
                                 "010-62345678", "abc"])
def test_bad_mobiles(crm: CRM, tmp_path: Path, raw: str) -> None:
    result, rejected = run(crm, tmp_path, f'手机号\n"{raw}"\n')
    assert result.rejected == 1 and rejected[0].field == "mobile"


def test_first_failing_field_in_model_order(crm: CRM, tmp_path: Path) -> None:
    long = "P" * 65
    text = (f"mobile,email,budget,persona,project\n123,bad,-1,rich,{long}\n,a@b.cn,,,\n"
            f"{M1},,-1,,{long}\n{M1},,,,{long}\n")
    _, rejected = run(crm, tmp_path, text)
    assert [(r.row, r.field) for r in rejected] == [
        (1, "mobile"), (2, "mobile,id_card"), (3, "project"), (4, "project")]
    assert rejected[1].reason == "no mobile, ID card or WeChat unionid"


def test_id_card_fills_and_checks_birth_date_and_gender(crm: CRM, tmp_path: Path) -> None:
    text = (f"mobile,id_card,gender,birth_date\n{M1},{CARD_F},,\n{M2},{CARD_M},女,\n"
            f"{M3},{card('11010519900101001')},,1990-01-02\n")
    result, rejected = run(crm, tmp_path, text)
    assert result.created == 1
    assert [(r.row, r.field) for r in rejected] == [(2, "gender"), (3, "birth_date")]
    c = crm.customers.find(id_card=CARD_F)[0]
    assert (c.gender, c.birth_date) == ("female", dt.date(1949, 12, 31))


def test_blank_lines_skipped_and_not_counted(crm: CRM, tmp_path: Path) -> None:
    text = f"\nname,mobile\n\n王伟,{M1}\n\n , \n,,\n坏,123\n李娜,{M2}\n\n"
    result, rejected = run(crm, tmp_path, text)
    assert counts(result) == (3, 2, 0, 1, 0)
    assert [r.row for r in rejected] == [2]


def test_quoted_multiline_cell(crm: CRM, tmp_path: Path) -> None:
    # a newline is text in a name; in a code (the source) it is a control character
    result, rejected = run(crm, tmp_path, f'name,mobile,source\n"王\n伟",{M1},web\n'
                                          f'李娜,{M2},"line1\nline2"\n')
    assert result.created == 1
    assert [(r.row, r.field) for r in rejected] == [(2, "source")]
    [created] = crm.customers.find(mobile=M1)
    assert created.name == "王\n伟" and created.projects == []


# -- resolution and counting -----------------------------------------------------------------


@pytest.mark.recrm_settings(import_batch_size=2)
def test_merges_within_and_across_batches(crm: CRM, tmp_path: Path) -> None:
    text = (
        "name,mobile,id_card,email,project\n"
        f"王伟,{M1},,,A\n"                      # 1 create (batch 1)
        f",{M1},,ww@x.cn,\n"                    # 2 merge into row 1, same batch
        f",{M1},{CARD_M},,B\n"                  # 3 merge across batches, adds the card
        f"别名,{M2},{CARD_M},,\n"               # 4 merge by card, adds mobile M2
        f"李娜,{M3},,,A\n"                      # 5 create
        f",{M2},,,A\n"                          # 6 merge by the mobile row 4 added
    )
    result, rejected = run(crm, tmp_path, text)
    assert rejected == []
    assert counts(result) == (6, 2, 4, 0, 0)
    wang = crm.customers.find(mobile=M2)[0]
    assert wang.name == "王伟" and wang.email == "ww@x.cn" and wang.id_card == CARD_M
    assert wang.mobiles == ["+86" + M1, "+86" + M2]
    assert sorted(p.project for p in wang.projects) == ["A", "B"]
    assert crm.customers.count() == 2


@pytest.mark.recrm_settings(import_batch_size=2)
def test_conflicts(crm: CRM, tmp_path: Path) -> None:
    crm.customers.add({"mobile": M1, "id_card": CARD_F})
    crm.customers.add({"mobile": M2})
    text = (
        "mobile,id_card\n"
        f"{M1},{CARD_M}\n"      # 1 other ID card than the customer M1 matched
        f"{M2},{CARD_F}\n"      # 2 keys of two different customers
        f"{M3},\n"              # 3 create
        f"{M4},{CARD_M}\n"      # 4 create
        f"{M3},{CARD_M}\n"      # 5 conflict between rows 3 and 4, same batch
    )
    result, rejected = run(crm, tmp_path, text)
    assert counts(result) == (5, 2, 0, 3, 0)
    assert [(r.row, r.field) for r in rejected] == [
        (1, "mobile,id_card"), (2, "mobile,id_card"), (5, "mobile,id_card")]
    assert "ID card differs" in rejected[0].reason
    assert "different customers" in rejected[1].reason
    assert "different customers" in rejected[2].reason


def test_conflict_with_customers_new_in_the_same_batch(crm: CRM, tmp_path: Path) -> None:
    text = f"mobile,id_card\n{M3},\n{M4},{CARD_M}\n{M3},{CARD_M}\n"
    result, rejected = run(crm, tmp_path, text)
    assert counts(result) == (3, 2, 0, 1, 0)
    assert [(r.row, r.field) for r in rejected] == [(3, "mobile,id_card")]
    # Not yet written, the two customers are named by the rows that created them.
    assert "new customer of row 1" in rejected[0].reason
    assert "new customer of row 2" in rejected[0].reason


def test_merge_that_changes_nothing_keeps_updated_at(crm: CRM, tmp_path: Path) -> None:
    before = crm.customers.add({"name": "王伟", "mobile": M1, "project": "A",
                                "source": "web"}).customer
    result, _ = run(crm, tmp_path, f"name,mobile,project,source\n别名,{M1},A,call\n")
    assert counts(result) == (1, 0, 1, 0, 0)
    after = crm.customers.get(before.id)
    assert after == before


def test_merge_fills_and_links(crm: CRM, tmp_path: Path) -> None:
    c = crm.customers.add({"name": "王伟", "mobile": M1, "project": "A"}).customer
    crm.customers.set_stage(c.id, "buyer", "A")
    text = f"name,mobile,email,project,owner_staff,source\n别名,{M1},w@x.cn,A,s9,call\n"
    result, _ = run(crm, tmp_path, text)
    assert result.merged == 1
    after = crm.customers.get(c.id)
    assert (after.name, after.email) == ("王伟", "w@x.cn")
    assert [(p.project, p.stage, p.owner_staff, p.source) for p in after.projects] == [
        ("A", "buyer", "s9", "call")]
    assert after.updated_at > c.updated_at


def test_external_id(crm: CRM, tmp_path: Path) -> None:
    text = f"mobile,external_id\n{M1},E-1\n{M2},E-1\n{M3},E-2\n"
    result, rejected = run(crm, tmp_path, text)
    assert rejected == []
    # Row 2 matches row 1 by its external reference and adds its mobile.
    assert counts(result) == (3, 2, 1, 0, 0)
    assert crm.customers.find(mobile=M2)[0].mobiles == ["+86" + M1, "+86" + M2]


def test_suspected_duplicates(crm: CRM, tmp_path: Path) -> None:
    crm.customers.add({"mobile": M1, "email": "family@x.cn"})
    text = (f"mobile,email\n{M2},FAMILY@x.cn\n{M3},twins@x.cn\n{M4},twins@x.cn\n"
            f"15112345678,alone@x.cn\n{M1},other@x.cn\n")
    result, _ = run(crm, tmp_path, text)
    assert counts(result) == (5, 4, 1, 0, 3)
    # a re-run creates nothing, so it suspects nothing
    again = crm.importer.import_csv(tmp_path / "in.csv")
    assert counts(again) == (5, 0, 5, 0, 0)


def _customers_snapshot(crm: CRM) -> list[tuple[Any, ...]]:
    out = []
    with crm.unit_of_work() as uow:
        from sqlalchemy import select

        from recrm_core.customers import load_customers
        from recrm_core.tables import CustomerRow

        ids = uow.session.scalars(select(CustomerRow.id).order_by(CustomerRow.id)).all()
        for c in load_customers(uow.session, ids).values():
            out.append((c.name, tuple(c.mobiles), c.id_card, tuple(c.wechat_unionids), c.email,
                        c.gender, c.birth_date, c.budget, c.persona, c.external_id,
                        tuple((p.project, p.source, p.owner_staff) for p in c.projects)))
    return sorted(out, key=repr)


ROW = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["王伟", "李娜", "", "张三"]),
        "mobile": st.sampled_from([M1, M2, M3, "123", ""]),
        "id_card": st.sampled_from([CARD_F, CARD_M, ""]),
        # two valid unionids, one differing only in case (the match is exact), a bad one
        "wechat_unionid": st.sampled_from([U1, U2, U1.upper(), "o+bad", ""]),
        "email": st.sampled_from(["a@x.cn", "b@x.cn", "bad", ""]),
        "project": st.sampled_from(["A", "B", ""]),
        "source": st.sampled_from(["web", "call", ""]),
        "owner_staff": st.sampled_from(["s1", "s2", ""]),
        "budget": st.sampled_from(["200万", "-1", ""]),
    },
)


@functools.cache
def _key_file() -> Path:
    path = Path(tempfile.mkdtemp(prefix="recrm-keys-")) / "recrm.key"
    create_key_file(path)
    return path


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, max_size=8), batch=st.integers(min_value=1, max_value=4))
def test_import_equals_adding_row_by_row(rows: list[dict[str, str]], batch: int) -> None:
    """The set-based import resolves exactly like crm.customers.add, row by row, and
    created + merged + rejected = rows, whatever the batch size."""
    # in-memory databases have no place for a key file: one for the whole module
    keys = {"key_file": str(_key_file())}
    with CRM(database_url="sqlite://", plugins=[], create_schema=True,
             settings={"import_batch_size": batch, **keys}) as bulk, \
            CRM(database_url="sqlite://", plugins=[], create_schema=True,
                settings=keys) as single:
        result = bulk.importer.import_rows(rows)
        created = merged = rejected = 0
        for row in rows:
            try:
                outcome = single.customers.add(row)
            except (InvalidInput, IdentityConflict):
                rejected += 1
                continue
            created += outcome.created
            merged += not outcome.created
        assert (result.rows, result.created, result.merged, result.rejected) == (
            len(rows), created, merged, rejected)
        assert result.created + result.merged + result.rejected == result.rows
        assert _customers_snapshot(bulk) == _customers_snapshot(single)


def test_validate_row_reports_like_the_api() -> None:
    assert validate_row(7, {"mobile": "123"}) == RejectedRow(
        row=7, field="mobile", reason="'123' is not a valid phone number")
    record = validate_row(1, {"mobile": "1381234 5678", "gender": "女"})
    assert not isinstance(record, RejectedRow) and record.mobiles == ["+8613812345678"]


# -- errors file, idempotence -----------------------------------------------------------------


def test_errors_file(crm: CRM, tmp_path: Path) -> None:
    crm.customers.add({"mobile": M1, "id_card": CARD_F})
    errors = tmp_path / "out" / "errors.csv"
    errors.parent.mkdir()
    text = f"姓名,手机,身份证,预算\n王伟,12345,,\n李娜,{M1},{CARD_M},\n张三,{M2},,-5\n赵四,{M3},,\n"
    result = crm.importer.import_csv(write(tmp_path, text), errors_path=errors)
    assert counts(result) == (4, 1, 0, 3, 0)
    raw = errors.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert lines[0] == ["row", "field", "reason"]
    assert [(r[0], r[1]) for r in lines[1:]] == [
        ("1", "mobile"), ("2", "mobile,id_card"), ("3", "budget")]
    assert all(r[2] for r in lines[1:])


def test_errors_file_header_only_when_nothing_rejected(crm: CRM, tmp_path: Path) -> None:
    errors = tmp_path / "errors.csv"
    crm.importer.import_csv(write(tmp_path, f"mobile\n{M1}\n"), errors_path=errors)
    assert errors.read_bytes() == b"\xef\xbb\xbfrow,field,reason\r\n"


@pytest.mark.recrm_settings(import_batch_size=3)
def test_rerun_is_idempotent(crm: CRM, tmp_path: Path) -> None:
    text = "name,mobile,id_card,project\n" + "".join(
        f"客户{i},139{i:08d},,P{i % 3}\n" for i in range(10)) + f"x,{M1},{CARD_M},P1\n,,{CARD_M},\n"
    first, _ = run(crm, tmp_path, text)
    assert counts(first) == (12, 11, 1, 0, 0)
    snapshot = _customers_snapshot(crm)
    second = crm.importer.import_csv(tmp_path / "in.csv")
    assert counts(second) == (12, 0, 12, 0, 0)
    assert _customers_snapshot(crm) == snapshot


def test_import_rows_api(crm: CRM) -> None:
    seen: list[RejectedRow] = []
    result = crm.importer.import_rows(
        [{"name": "王伟", "mobile": M1}, {"mobile": "bad"}, {"mobiles": [M1, M2]}],
        on_reject=seen.append,
    )
    assert counts(result) == (3, 1, 1, 1, 0)
    assert [(r.row, r.field) for r in seen] == [(2, "mobile")]
    assert crm.customers.find(mobile=M2)[0].name == "王伟"


def test_progress_callback(crm: CRM, tmp_path: Path) -> None:
    calls: list[Any] = []
    path = write(tmp_path, f"mobile\n{M1}\n{M2}\n")
    crm.importer.import_csv(path, progress=calls.append)
    assert len(calls) == 1
    assert calls[0].rows == 2 and calls[0].bytes_read == calls[0].total_bytes == path.stat().st_size


def test_csv_source_streams_rows(tmp_path: Path) -> None:
    path = write(tmp_path, f"手机,姓名,,\n{M1},王伟,,\n\n{M2},,extra,cells\n{M2},, ,\n")
    with CsvSource(path) as source:
        # a value where no column is named is not dropped unseen: its row is rejected
        assert list(source) == [
            (1, {"mobile": M1, "name": "王伟"}),
            (2, RejectedRow(row=2, field="", reason="a value in column 3, right of the "
                            "header's last column (2): the row's cells may be shifted")),
            (3, {"mobile": M2})]


# -- the hook ------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[ImportedCustomer], dict[int, Customer], bool]] = []

    @hookimpl
    def recrm_customers_imported(self, uow: Any, records: list[ImportedCustomer],
                                 load: Callable[[list[int]], dict[int, Customer]]) -> None:
        # Full models only for the customers this plugin cares about: the created ones.
        models = load([r.customer_id for r in records if r.created])
        self.calls.append((records, models, uow.session.in_transaction()))


@pytest.mark.recrm_settings(import_batch_size=2)
def test_hook_recrm_customers_imported(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str], hook_recorder: Any
) -> None:
    existing = crm.customers.add({"name": "老客户", "mobile": M4}).customer
    recorder = Recorder()
    register_plugin(recorder)
    hook_recorder.calls.clear()
    text = (f"name,mobile,email\n王伟,{M1},\n,{M1},w@x.cn\n"   # batch 1: create + merge
            f"坏,123,\n,{M4},\n"                              # batch 2: reject + merge existing
            f"李娜,{M2},\n")                                   # batch 3: create
    result, _ = run(crm, tmp_path, text)
    assert counts(result) == (5, 2, 2, 1, 0)
    assert len(recorder.calls) == 3
    (r1, m1, tx1), (r2, m2, _), (r3, m3, _) = recorder.calls
    assert tx1
    # A customer created in the batch is reported once, as created, with every field
    # the batch set (the second row filled the email) and both of its rows.
    (created,) = r1
    assert created.created and created.rows == [1, 2]
    assert created.changed == ["email", "mobiles", "name"]
    assert [(c.name, c.email) for c in m1.values()] == [("王伟", "w@x.cn")]
    assert m1[created.customer_id] == crm.customers.get(created.customer_id)
    # A matched customer that the row left as it was: listed, nothing changed, no model.
    assert [(r.customer_id, r.created, r.changed, r.rows) for r in r2] == [
        (existing.id, False, [], [4])
    ]
    assert m2 == {}
    assert [r.created for r in r3] == [True] and [c.name for c in m3.values()] == ["李娜"]
    # No per-row hooks during an import.
    names = {call.name for call in hook_recorder.calls}
    assert "recrm_customer_created" not in names and "recrm_customer_updated" not in names
    assert len(hook_recorder.named("recrm_customers_imported")) == 3


@pytest.mark.recrm_settings(import_batch_size=10)
def test_imported_records_name_what_a_merge_changed(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    existing = crm.customers.add({"mobile": M4}).customer
    recorder = Recorder()
    register_plugin(recorder)
    run(crm, tmp_path, f"name,mobile,project\n王五,{M4},XL1\n")
    ((records, _, _),) = recorder.calls
    assert [(r.customer_id, r.created, r.changed) for r in records] == [
        (existing.id, False, ["name", "projects"])
    ]


def test_load_refuses_after_its_batch(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str], hook_recorder: Any
) -> None:
    # Called later (from a test's hook_recorder, or kept by a plugin), load() used to
    # open a transaction that nobody ended: on PostgreSQL it held its locks for good.
    register_plugin(Recorder())
    run(crm, tmp_path, f"name,mobile\n王伟,{M1}\n")
    (call,) = hook_recorder.named("recrm_customers_imported")
    with pytest.raises(RuntimeError, match="only while recrm_customers_imported runs"):
        call.kwargs["load"]([1])
    assert crm.customers.count() == 1  # and nothing waits on a lock left behind


class Exploder:
    def __init__(self, fail_on_call: int) -> None:
        self.fail_on_call = fail_on_call
        self.calls = 0

    @hookimpl
    def recrm_customers_imported(self, uow: Any) -> None:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("loyalty service down")


@pytest.mark.recrm_settings(import_batch_size=2)
def test_plugin_failure_rolls_back_the_batch_and_rerun_finishes(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    exploder = Exploder(fail_on_call=2)
    name = register_plugin(exploder, name="exploder")
    mobiles = [f"139{i:08d}" for i in range(5)]
    text = "name,mobile\n" + "".join(f"客户{i},{m}\n" for i, m in enumerate(mobiles))
    errors = tmp_path / "errors.csv"
    with pytest.raises(ImportStopped) as info:
        crm.importer.import_csv(write(tmp_path, text), errors_path=errors)
    err = info.value
    assert isinstance(err, RecrmError) and err.exit_code == 1
    assert err.plugin == name == "exploder"
    assert err.committed_rows == 2
    assert "exploder" in str(err) and "2 row(s)" in str(err) and "rows 3-4" in str(err)
    assert crm.customers.count() == 2
    assert crm.customers.find(mobile=mobiles[2]) == []
    # Re-run: the first batch merges, the rest is created, nothing twice.
    exploder.fail_on_call = 0
    result = crm.importer.import_csv(tmp_path / "in.csv")
    assert counts(result) == (5, 3, 2, 0, 0)
    assert crm.customers.count() == 5


def test_stopped_import_error_is_recrm_error() -> None:
    err = ImportStopped("x", ImportResult(rows=4), plugin="p")
    assert err.committed_rows == 4 and err.exit_code == 1


# -- the email fast path the import relies on --------------------------------------------------


@settings(max_examples=300)
@given(
    st.text(alphabet="aZ9_+-.", min_size=1, max_size=10),
    st.lists(st.text(alphabet="ab9-Z", min_size=1, max_size=6), min_size=1, max_size=3),
    st.sampled_from(["com", "cn", "COM", "test", "local", "onion", "arpa", "x", "c0m"]),
)
def test_plain_email_fast_path_agrees_with_email_validator(
    local: str, labels: list[str], tld: str
) -> None:
    from email_validator import EmailNotValidError, validate_email

    from recrm_core.identity import _plain_email

    address = local + "@" + ".".join([*labels, tld])
    fast = _plain_email(address)
    if fast is not None:
        try:
            expected = validate_email(address, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            expected = None
        assert fast == expected


def test_unique_violation_retries_the_batch(
    crm: CRM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    from recrm_core.importing import ImportService

    original = ImportService._apply
    attempts: list[int] = []

    def racing(self: ImportService, uow: Any, run: Any, batch: Any) -> Any:
        attempts.append(1)
        applied = original(self, uow, run, batch)
        if len(attempts) == 1:  # as if a concurrent writer had taken a key meanwhile
            raise IntegrityError("INSERT INTO identities", {}, Exception("UNIQUE failed"))
        return applied

    monkeypatch.setattr(ImportService, "_apply", racing)
    result, _ = run(crm, tmp_path, f"mobile\n{M1}\n{M2}\n")
    assert len(attempts) == 2
    assert counts(result) == (2, 2, 0, 0, 0)
    assert crm.customers.count() == 2
