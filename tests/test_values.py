"""Value parsers shared by the API, the CLI and the CSV import (issue 2, "Values")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recrm_core.values import (
    PERSONAS,
    parse_amount,
    parse_budget,
    parse_date,
    parse_gender,
    parse_persona,
    parse_stage,
)

# -- gender --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("男", "male"),
        ("女", "female"),
        ("M", "male"),
        ("m", "male"),
        ("F", "female"),
        ("f", "female"),
        ("male", "male"),
        ("MALE", "male"),
        ("Female", "female"),
        (" 女 ", "female"),
        ("Ｍ", "male"),  # full width
    ],
)
def test_gender_spellings(raw: str, expected: str) -> None:
    assert parse_gender(raw) == expected


@pytest.mark.parametrize("raw", ["", "  ", None])
def test_empty_gender_is_none(raw: object) -> None:
    assert parse_gender(raw) is None


@pytest.mark.parametrize("raw", ["x", "man", "先生", "unknown", "1"])
def test_unknown_gender_is_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="男/女/M/F/male/female"):
        parse_gender(raw)


# -- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "2024-01-02",
        "2024-1-2",
        "2024/1/2",
        "2024/01/02",
        "20240102",
        "2024年1月2日",
        "2024年01月02日",
        "２０２４－０１－０２",  # full-width digits and dash
        "２０２４年１月２日",
        "２０２４０１０２",
        "  2024/1/2\u3000",
    ],
)
def test_date_spellings(raw: str) -> None:
    assert parse_date(raw) == dt.date(2024, 1, 2)


def test_date_objects_pass_through() -> None:
    assert parse_date(dt.date(2024, 1, 2)) == dt.date(2024, 1, 2)
    assert parse_date(dt.datetime(2024, 1, 2, 15, 30)) == dt.date(2024, 1, 2)
    assert parse_date("") is None
    assert parse_date(None) is None


@pytest.mark.parametrize(
    "raw", ["2024-02-30", "2023-02-29", "2024/13/01", "20240132", "2024年4月31日"]
)
def test_impossible_dates_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="not a real date"):
        parse_date(raw)


@pytest.mark.parametrize(
    "raw",
    ["02/01/2024", "24-1-2", "2024.01.02", "Jan 2 2024", "2024-01", "2024-01-02T10:00", "abc"],
)
def test_unknown_date_formats_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="is not like"):
        parse_date(raw)


def test_future_dates_rejected_when_bounded() -> None:
    today = dt.date(2024, 6, 1)
    assert parse_date("2024-06-01", not_after=today) == today
    with pytest.raises(ValueError, match="future"):
        parse_date("2024-06-02", not_after=today)
    # the bound applies to date objects as well as to text
    with pytest.raises(ValueError, match="future"):
        parse_date(dt.date(2024, 6, 2), not_after=today)
    with pytest.raises(ValueError, match="future"):
        parse_date(dt.datetime(2024, 6, 2, 8, 0), not_after=today)
    # without a bound a future date (e.g. a handover date) is fine
    assert parse_date("2099-01-01") == dt.date(2099, 1, 1)


@given(day=st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_every_real_date_round_trips_in_every_format(day: dt.date) -> None:
    for text in (
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        day.strftime("%Y%m%d"),
        f"{day.year}年{day.month}月{day.day}日",
    ):
        assert parse_date(text) == day, text


# -- budget --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3000000", 3_000_000),
        ("1,200,000", 1_200_000),
        ("1,200,000.00", 1_200_000),
        ("200万", 2_000_000),
        ("1.5万", 15_000),
        ("200 万", 2_000_000),
        ("200万元", 2_000_000),
        ("1.2亿", 120_000_000),
        ("¥1,200,000", 1_200_000),
        ("￥200万", 2_000_000),  # full-width yen sign
        ("¥ 300万", 3_000_000),
        ("１，２００，０００", 1_200_000),  # full-width digits and commas
        ("１．５万", 15_000),
        ("0", 0),
        (2_500_000, 2_500_000),
        (" 800000 ", 800_000),
    ],
)
def test_budget_spellings(raw: object, expected: int) -> None:
    assert parse_budget(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_empty_budget_is_none(raw: object) -> None:
    assert parse_budget(raw) is None


@pytest.mark.parametrize("raw", ["-5", "-200万", "¥-100", "－100", -1])
def test_negative_budget_is_rejected(raw: object) -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_budget(raw)


@pytest.mark.parametrize(
    "raw",
    ["100-200万", "100~200万", "100～200万", "100到200万", "100至200万", "100-200", "100—200万"],
)
def test_budget_ranges_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match=r"range|not a number"):
        parse_budget(raw)


@pytest.mark.parametrize("error", ["#DIV/0!", "#N/A", "#VALUE!", "#REF!", "#NAME?", "#n/a",
                                   "＃DIV/0！"])
def test_a_spreadsheet_error_value_is_named_in_every_number_field(error: str) -> None:
    """Found by a new user's probe: a budget cell holding Excel's ``#DIV/0!`` (a failed
    formula, as a CSV export writes it) was "not a number (ranges are not accepted)",
    which sends the office looking for a range. A budget and an amount (area, price)
    say it is the sheet's error value, in the same words."""
    shown = error.upper().replace("＃", "#").replace("！", "!")
    reason = (f"is the spreadsheet error value {shown}, not a number: fix its formula in the"
              " sheet or clear the cell")
    with pytest.raises(ValueError) as budget:
        parse_budget(error)
    assert str(budget.value) == f"budget {reason}"
    for units in (False, True):
        with pytest.raises(ValueError) as amount:
            parse_amount(error, units=units)
        assert str(amount.value) == reason


@pytest.mark.parametrize("raw", ["#", "#12", "#DIV/0", "N/A", "#N/A#"])
def test_text_like_an_error_value_is_still_not_a_number(raw: str) -> None:
    for parse in (parse_budget, parse_amount):
        with pytest.raises(ValueError) as caught:
            parse(raw)
        assert "spreadsheet error" not in str(caught.value)


@pytest.mark.parametrize("raw", ["abc", "1,20,000", "1e5", "万", "¥", "12.3.4", "二百万", True])
def test_budget_garbage_is_rejected(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_budget(raw)


@given(amount=st.integers(min_value=0, max_value=10**12))
def test_budget_with_and_without_separators_agree(amount: int) -> None:
    assert parse_budget(str(amount)) == amount
    assert parse_budget(f"{amount:,}") == amount
    assert parse_budget(f"¥{amount:,}") == amount
    assert parse_budget(f"{amount}万") == amount * 10_000


# -- persona and stage ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("刚需", "first_time"),
        ("改善", "upgrader"),
        ("投资", "investor"),
        ("高端", "luxury"),
        ("养老", "retiree"),
        ("first_time", "first_time"),
        ("First_Time", "first_time"),
        ("UPGRADER", "upgrader"),
        ("investor", "investor"),
        ("luxury", "luxury"),
        ("retiree", "retiree"),
        (" 改善 ", "upgrader"),
    ],
)
def test_persona_spellings(raw: str, expected: str) -> None:
    assert parse_persona(raw) == expected
    assert expected in PERSONAS


def test_empty_persona_is_none() -> None:
    assert parse_persona("") is None
    assert parse_persona(None) is None


@pytest.mark.parametrize("raw", ["vip", "刚需型", "first", "rich"])
def test_unknown_persona_is_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="刚需/改善/投资/高端/养老"):
        parse_persona(raw)


def test_stage_names() -> None:
    assert parse_stage(" Buyer ") == "buyer"
    with pytest.raises(ValueError, match="prospect, visitor, subscriber, buyer, owner"):
        parse_stage("customer")


def test_parse_amount_is_exact_and_never_rounds() -> None:
    assert parse_amount("1,200,000.5") == Decimal("1200000.50")
    assert parse_amount(" ¥98.50 ") == Decimal("98.50")
    assert parse_amount(7) == Decimal("7.00")
    assert parse_amount(Decimal("1E+5")) == Decimal("100000.00")  # code's exact digits
    assert parse_amount("1.2345", places=4) == Decimal("1.2345")
    assert parse_amount(None) is None and parse_amount("  ") is None
    assert parse_amount("-3", signed=True) == Decimal("-3.00")
    for bad, reason in ((0.1, "never a float"), (True, "never a float"),
                        ("0.001", "more than two decimal places"),
                        ("1e5", "no exponent"), ("NaN", "is not a number"),
                        ("-inf", "is not a number"), ("abc", "is not a number"),
                        ("1000000000000", r"below 10\^12"), ("-1", "cannot be negative")):
        with pytest.raises(ValueError, match=reason):
            parse_amount(bad)
    with pytest.raises(ValueError, match="more than four decimal places"):
        parse_amount("1.23456", places=4)


def test_parse_amount_reads_yuan_and_full_width_as_a_budget_does() -> None:
    # Found by a new user: a 销控表's 总价 "250万元" or "2,500,000元" and an area typed
    # on a Chinese keyboard (１２０．５) were "not a number", though a budget takes them.
    for raw, price in (("250万元", "2500000.00"), ("2,500,000元", "2500000.00"),
                       ("2,500,000 元", "2500000.00"), ("１，２００", "1200.00"),
                       ("￥２５０万", "2500000.00")):
        assert parse_amount(raw, units=True) == Decimal(price), raw
        assert parse_budget(raw) == int(Decimal(price)), raw
    assert parse_amount("１２０．５") == Decimal("120.50")
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_amount("－100")
    for bad in ("元", "万元", "250元万"):
        with pytest.raises(ValueError, match="is not a number"):
            parse_amount(bad, units=True)


def test_parse_amount_takes_wan_and_yi_in_a_money_column_as_a_budget_does() -> None:
    # a 销控表 writes its total prices as 150万; the budget took 200万, a price did not
    assert parse_amount("150万", units=True) == Decimal("1500000.00") == parse_budget("150万")
    assert parse_amount("1.5亿", units=True) == Decimal("150000000.00") == parse_budget("1.5亿")
    assert parse_amount("1,500,000", units=True) == Decimal("1500000.00")
    assert parse_amount(" ¥2.35万 ", units=True) == Decimal("23500.00")
    for bad, reason in (("-150万", "cannot be negative"), ("万", "is not a number"),
                        ("abc万", "is not a number"), ("150万万", "is not a number"),
                        ("1e2万", "no exponent"), ("10001亿", r"below 10\^12"),
                        ("1.0000001万", "more than two decimal places")):
        with pytest.raises(ValueError, match=reason):
            parse_amount(bad, units=True)
    # only a money column: an area or a deposit in 万 is still a typing mistake
    with pytest.raises(ValueError, match="is not a number"):
        parse_amount("150万")
