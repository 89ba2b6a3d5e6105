"""Segment definitions that are too deep, too wide, too long or hold unstorable text
are usage errors with the limit named (the CLI exits 2 with one line), never an
internal error; and everything within the limits runs on SQLite and PostgreSQL.

Before: 900 levels of nesting crashed ``json.loads`` with RecursionError (the depth
limit was checked after decoding); a 50,000-condition ``any`` overflowed SQLite's
expression depth; an ``in`` over more than 65,535 values broke PostgreSQL's
parameter limit; a NUL or lone surrogate became a DataError/UnicodeEncodeError;
even a ``not`` chain at the allowed depth overflowed SQLite's parser stack.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from recrm_core import CRM, InvalidInput
from recrm_core.segments import MAX_DEPTH, MAX_NODES, MAX_VALUES, parse_definition
from recrm_core.testing import CliResult, RecrmCliRunner

Definition = dict[str, Any]
LINK: Definition = {"field": "project", "op": "eq", "value": "XL2"}
MOBILE: Definition = {"field": "mobile", "op": "contains", "value": "138"}
NAME: Definition = {"field": "name", "op": "in", "value": ["王伟", "李娜"]}


def usage_error(result: CliResult) -> str:
    """Exit 2, one short line on stderr, nothing on stdout, no internals."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr[:500])
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and len(line) < 300, result.stderr[:500]
    for leak in ("Traceback", "RecursionError", "OperationalError", "DataError", "SQL"):
        assert leak not in line
    return line


def count(cli: RecrmCliRunner, definition: Definition | str) -> CliResult:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    return cli.invoke("customers", "count", "--segment", text, "--json")


def nested(depth: int, kind: str = "not") -> str:
    if kind == "not":
        return '{"not": ' * depth + json.dumps(NAME) + "}" * depth
    return f'{{"{kind}": [' * depth + json.dumps(NAME) + "]}" * depth


# -- depth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["all", "any", "not"])
def test_nesting_900_deep_is_a_usage_error(cli_runner: RecrmCliRunner, kind: str) -> None:
    # two brackets a level: json.loads recursed 1,800 deep and raised RecursionError
    line = usage_error(count(cli_runner, nested(900, kind)))
    assert f"nested deeper than {MAX_DEPTH} levels" in line


def test_nesting_far_deeper_in_a_file_is_refused_before_decoding(
    cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"all": [' * 200_000 + "]}" * 200_000, encoding="utf-8")
    assert "nested deeper" in usage_error(
        cli_runner.invoke("customers", "count", "--segment", str(deep)))
    with pytest.raises(InvalidInput, match="nested deeper"):
        parse_definition("[" * 100_000)


def test_brackets_inside_strings_do_not_count_as_depth(cli_runner: RecrmCliRunner) -> None:
    crm = cli_runner.crm
    stored = '[{"\\' * 25  # brackets, quotes and backslashes inside one value
    crm.customers.add({"mobile": "13812345678", "name": stored})
    for value, expected in ((stored, 1), ('[{"\\' * 300, 0)):
        text = json.dumps({"field": "name", "op": "eq", "value": value})
        assert parse_definition(text)["value"] == value
        result = count(cli_runner, text)
        assert result.exit_code == 0, result.stderr
        assert result.json() == {"count": expected}
    assert text.count("[") > 2 * MAX_DEPTH + 3


def definitions_at_the_depth_limit() -> list[Definition]:
    found = []
    for cycle in (["not"], ["all"], ["any"], ["not", "any"], ["any", "all"],
                  ["not", "all", "not", "any"]):
        for leaf, sibling in itertools.product((LINK, MOBILE, NAME), (None, LINK, MOBILE)):
            definition: Definition = leaf
            for kind in itertools.islice(itertools.cycle(cycle), MAX_DEPTH):
                definition = ({"not": definition} if kind == "not"
                              else {kind: [definition, *([sibling] if sibling else [])]})
            found.append(definition)
    return found


def test_every_definition_at_the_depth_limit_runs(crm: CRM) -> None:
    # 32 levels of `not` overflowed SQLite's parser stack ("parser stack overflow")
    crm.customers.add({"mobile": "13812345678", "name": "王伟", "project": "XL2"})
    for definition in definitions_at_the_depth_limit():
        assert crm.segments.count(definition) in (0, 1)
    assert crm.segments.count(json.loads(nested(MAX_DEPTH))) == 1  # 32 `not`s: even
    with pytest.raises(InvalidInput, match="nested deeper"):
        crm.segments.count(json.loads(nested(MAX_DEPTH + 1)))


# -- width ---------------------------------------------------------------------------------------


def test_fifty_thousand_conditions_are_a_usage_error(cli_runner: RecrmCliRunner) -> None:
    wide = {"any": [{"field": "name", "op": "eq", "value": f"n{i}"} for i in range(50_000)]}
    line = usage_error(count(cli_runner, wide))
    assert f"more than {MAX_NODES} conditions" in line
    with pytest.raises(InvalidInput, match=f"more than {MAX_NODES}"):
        cli_runner.crm.segments.count({"all": [{"all": []}] * MAX_NODES})  # groups count


@pytest.mark.parametrize("member", [LINK, MOBILE, NAME, {"not": NAME}])
def test_a_definition_of_the_most_conditions_runs(crm: CRM, member: Definition) -> None:
    # 500 project conditions in one `any` overflowed SQLite's expression depth (1000)
    crm.customers.add({"mobile": "13812345678", "name": "王伟", "project": "XL2"})
    crm.customers.add({"mobile": "13912345678", "name": "张三", "project": "YH1"})
    most = (MAX_NODES - 1) // (2 if "not" in member else 1)  # with the group: MAX_NODES
    assert crm.segments.count({"any": [member] * most}) == crm.segments.count(member)
    assert crm.segments.count({"all": [member] * most}) == crm.segments.count(member)
    with pytest.raises(InvalidInput, match=f"more than {MAX_NODES}"):
        crm.segments.count({"any": [member] * (most + 1)})


# -- long lists of values ----------------------------------------------------------------------


def register_projects(crm: CRM, codes: list[str]) -> None:
    """Projects to name in a segment (an unknown project in one is refused), in one
    statement rather than one operation each."""
    from sqlalchemy import insert

    from recrm_core import utcnow
    from recrm_core.tables import ProjectRow

    with crm.unit_of_work() as uow:
        uow.session.execute(insert(ProjectRow), [
            {"code": code, "name": code, "created_at": utcnow()} for code in codes])


def mobiles(n: int, start: int = 0) -> list[str]:
    return [f"+86138{i:08d}" for i in range(start, start + n)]


def test_an_in_list_over_the_parameter_limits_works(crm: CRM) -> None:
    # 70,000 values: more than PostgreSQL's 65,535 parameters and SQLite's 32,766
    inside = crm.customers.add({"mobile": "13800065000", "project": "XL2"}).customer
    outside = crm.customers.add({"mobile": "13912345678", "project": "XL2"}).customer
    listed = mobiles(70_000)
    assert crm.segments.count({"field": "mobile", "op": "in", "value": listed}) == 1
    assert list(crm.segments.iter_ids({"field": "mobile", "op": "not_in", "value": listed})
                ) == [outside.id]
    ids = [*range(10**6, 10**6 + 70_000), inside.id]
    assert list(crm.segments.iter_ids({"field": "id", "op": "in", "value": ids})) == [inside.id]
    register_projects(crm, [f"P{i}" for i in range(5000)])
    assert list(crm.segments.iter_ids({"all": [
        {"field": "project", "op": "in", "value": [f"P{i}" for i in range(5000)] + ["XL2"]},
        {"field": "id", "op": "not_in", "value": ids},
    ]})) == [outside.id]


def test_long_lists_of_every_kind_of_value_match_as_short_ones(crm: CRM) -> None:
    # past 1,000 values a list travels as one array parameter: the same answers
    wang = crm.customers.add({"mobile": "13812345678", "birth_date": "1990-05-06",
                              "budget": "300万", "email": "wang@example.com",
                              "name": "王伟", "external_id": "C-1", "project": "XL2",
                              "owner_staff": "zhang"}).customer
    other = crm.customers.add({"mobile": "13912345678", "birth_date": "1991-01-01",
                               "budget": 100, "name": "李娜", "project": "YH1"}).customer
    register_projects(crm, [f"P{i}" for i in range(1500)])
    day = dt.date(1800, 1, 1)
    filler: dict[str, list[Any]] = {
        "birth_date": [(day + dt.timedelta(days=i)).isoformat() for i in range(1500)],
        "budget": list(range(200, 1700)),
        "created_at": [(wang.created_at + dt.timedelta(microseconds=i + 1)).isoformat()
                       for i in range(1500)],
        "owner_staff": [f"s{i}" for i in range(1500)],
        "project": [f"P{i}" for i in range(1500)],
        "email": [f"x{i}@example.com" for i in range(1500)],
        "name": [f"名{i}" for i in range(1500)],
        "external_id": [f"E{i}" for i in range(1500)],
        "mobile": mobiles(1500, 5_000_000),
    }
    wanted: dict[str, Any] = {
        "birth_date": "1990-05-06", "budget": 3_000_000, "created_at": wang.created_at.isoformat(),
        "owner_staff": "zhang", "project": "XL2", "email": "wang@example.com", "name": "王伟",
        "external_id": "C-1", "mobile": "13812345678",
    }
    for field, values in filler.items():
        assert len(values) > 1000
        for listed, matched in ((values, []), ([*values, wanted[field]], [wang.id])):
            got = list(crm.segments.iter_ids({"field": field, "op": "in", "value": listed}))
            assert got == matched, (field, "in")
            rest = [cid for cid in (wang.id, other.id) if cid not in matched]
            got = list(crm.segments.iter_ids({"field": field, "op": "not_in", "value": listed}))
            assert got == rest, (field, "not_in")


def test_more_values_than_the_limit_are_a_usage_error(cli_runner: RecrmCliRunner) -> None:
    too_many = {"field": "mobile", "op": "in", "value": mobiles(MAX_VALUES + 1)}
    assert f"more than {MAX_VALUES} values" in usage_error(count(cli_runner, too_many))
    # the limit is over the whole definition, not per list
    split = {"any": [{"field": "mobile", "op": "in", "value": mobiles(60_000)},
                     {"field": "mobile", "op": "not_in", "value": mobiles(60_000, 60_000)}]}
    with pytest.raises(InvalidInput, match=r"any\[1\]\.value: more than"):
        cli_runner.crm.segments.count(split)


# -- values the database cannot hold -------------------------------------------------------


@pytest.mark.parametrize(("field", "op", "raw"), [
    ("name", "eq", "王\x00伟"),
    ("name", "contains", "\ud800"),
    ("project", "in", ["XL2", "X\x00L2"]),
    ("email", "eq", "a\x00@example.com"),
    ("owner_staff", "ne", "\udcff"),
    ("mobile", "contains", "138\x00"),
])
def test_unstorable_text_is_refused(cli_runner: RecrmCliRunner, field: str, op: str,
                                    raw: Any) -> None:
    definition = {"all": [{"field": field, "op": op, "value": raw}]}
    with pytest.raises(InvalidInput) as caught:
        cli_runner.crm.segments.count(definition)
    assert caught.value.field.startswith("all[0].value")
    usage_error(count(cli_runner, json.dumps(definition)))  # \u0000, \ud800 escapes


def test_a_number_no_column_holds_is_refused(cli_runner: RecrmCliRunner) -> None:
    for value in (2**63, -(2**63) - 1, "9" * 40):
        line = usage_error(count(cli_runner, {"field": "id", "op": "eq", "value": value}))
        assert "value" in line
    assert "too long" in usage_error(count(cli_runner, '{"field": "id", "op": "eq", '
                                                       f'"value": {"9" * 5000}}}'))
