"""The import worker's shortcuts (issue 21, session 6) give exactly what the general
path gives, value or refusal with its reason.

- ``normalise_mobile`` takes eleven plain ASCII digits opening with 1 straight to the CN
  mobile pattern: compared with the general path (the same text with a space around
  it, which cleaning strips) over generated strings, and with phonenumbers itself;
- ``parse_date`` reads ``YYYY-MM-DD`` by slicing: compared with the patterns likewise;
- codes, genders, personas and budgets keep their results for text: compared with the
  parser itself (``__wrapped__``), refusals included, asked twice;
- the special-use email domains are still left to email_validator;
- the worker packs and pickles a batch with its collector paused, and a header maps a
  row's cells as it did.
"""

from __future__ import annotations

import datetime as dt
import gc
import pickle
from collections.abc import Callable
from typing import Any, cast

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recrm_core import identity, importrows, importwire, values
from recrm_core.csvsource import map_header
from recrm_core.identity import IdentityError, normalise_mobile
from recrm_core.values import optional_code, parse_budget, parse_date, parse_gender, parse_persona


def outcome(parse: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """What a parser gives: ("value", v) or ("refused", its class, reason, field)."""
    try:
        return ("value", parse(*args, **kwargs))
    except ValueError as exc:
        return ("refused", type(exc), str(exc), getattr(exc, "field", None))


def library_mobile(text: str) -> str | None:
    """phonenumbers' own answer: the E.164 of a valid mobile of CN, else None."""
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# -- mobiles ------------------------------------------------------------------------------

def test_plain_digits_skip_cleaning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eleven plain digits (an import's every row) are decided by the pattern alone:
    with cleaning broken they still normalise, and a non-mobile is still refused."""

    def broken(_raw: object) -> str:
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(identity, "clean_code", broken)
    assert normalise_mobile("13812345678") == "+8613812345678"
    with pytest.raises(IdentityError, match="'12345678901' is not a valid mobile number"):
        normalise_mobile("12345678901")
    with pytest.raises(AssertionError):  # anything else is cleaned first, as before
        normalise_mobile("138 1234 5678")
    with pytest.raises(AssertionError):  # and other regions take the general path
        normalise_mobile("13812345678", "HK")


eleven = st.text(alphabet="0123456789", min_size=11, max_size=11)
near = st.text(alphabet="0123456789１８ +-.x\u200b\u3000", min_size=0, max_size=15)


@given(text=eleven.map(lambda t: "1" + t[1:]) | eleven | near,
       region=st.sampled_from(["CN", "HK", "US"]))
@settings(max_examples=1500, deadline=None)
@example(text="13812345678", region="CN")
@example(text="12345678901", region="CN")
@example(text="17406123456", region="CN")  # 17406: just outside 1740[0-5]
@example(text="１３８１２３４５６７８", region="CN")
@example(text="1381234567８", region="CN")
def test_the_shortcut_gives_what_the_general_path_gives(text: str, region: str) -> None:
    """A space either side makes the text miss the shortcut; cleaning strips it, so
    the general path sees the same text: same value, or same refusal and reason."""
    assert outcome(normalise_mobile, text, region) == outcome(normalise_mobile, f" {text} ",
                                                              region)


@given(national=eleven.map(lambda t: "1" + t[1:]))
@settings(max_examples=1500, deadline=None)
def test_the_shortcut_gives_what_phonenumbers_gives(national: str) -> None:
    """phonenumbers stays the authority: every number the shortcut decides gets its
    answer (accepted with the same E.164, or refused)."""
    got = outcome(normalise_mobile, national)
    assert (got[1] if got[0] == "value" else None) == library_mobile(national)


@pytest.mark.parametrize("raw", [
    "+86 138 1234 5678", "0086-13812345678", "8613812345678", "13812345678.0",
    "１３８１２３４５６７８", "010-62345678", "+852 5123 4567", "1381234567", "138123456789",
    "\u200b13812345678", "138 1234 567８",
])
def test_what_the_shortcut_leaves_is_decided_as_before(raw: str) -> None:
    """Prefixes, separators, full-width digits, floats, landlines, other countries and
    wrong lengths take the general path (and phonenumbers where it did)."""
    assert outcome(normalise_mobile, raw) == outcome(normalise_mobile, f" {raw} ")


# -- dates --------------------------------------------------------------------------------

TODAY = dt.date(2026, 12, 7)
iso_like = st.builds(
    lambda y, m, d: f"{y}-{m}-{d}",
    st.text(alphabet="0123456789", min_size=4, max_size=4),
    st.text(alphabet="0123456789", min_size=1, max_size=2),
    st.text(alphabet="0123456789", min_size=1, max_size=2),
)


@given(text=iso_like | st.text(alphabet="0123456789-/年月日 ２", max_size=12),
       bound=st.sampled_from([None, TODAY]))
@settings(max_examples=1500, deadline=None)
@example(text="1990-01-02", bound=TODAY)
@example(text="2023-02-29", bound=TODAY)
@example(text="2099-01-01", bound=TODAY)
@example(text="2099-01-01", bound=None)
@example(text="0000-01-01", bound=None)
@example(text="1990-13-01", bound=None)
def test_iso_dates_read_by_slicing_are_the_patterns_dates(text: str, bound: dt.date | None
                                                          ) -> None:
    assert outcome(parse_date, text, not_after=bound) == \
        outcome(parse_date, f" {text} ", not_after=bound)


def test_an_iso_date_skips_the_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortcut is taken (cleaning broken: it still reads), and a date it cannot
    accept (unreal, in the future) is refused by the general path with its reason."""
    monkeypatch.setattr(values, "clean", lambda raw: (_ for _ in ()).throw(AssertionError))
    assert parse_date("1990-01-02", not_after=TODAY) == dt.date(1990, 1, 2)
    with pytest.raises(AssertionError):
        parse_date("2099-01-01", not_after=TODAY)
    with pytest.raises(AssertionError):
        parse_date("2023-02-29")


# -- kept results -------------------------------------------------------------------------

KEPT: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    (parse_gender, ()), (parse_persona, ()), (parse_budget, ()), (optional_code, (64,)),
    (optional_code, (128,)), (optional_code, (3,)),
]
cells = st.sampled_from([
    "男", "女", "M", "f", " x ", "Ｍ", "", "  ", "刚需", "first-time", "nope", "200万",
    "1,200,000", "¥1.5万", "-5", "1-2万", "99999999999999999999万", "XL1", "XL\u200b1", "\u200b",
    "bad\x07code", "x" * 70, "abcd", "a\x00b", "\udcff",
]) | st.text(max_size=8)


@given(which=st.sampled_from(range(len(KEPT))), text=cells)
@settings(max_examples=1500, deadline=None)
def test_a_kept_result_is_the_parsers_result(which: int, text: str) -> None:
    parse, more = KEPT[which]
    fresh = outcome(parse.__wrapped__, text, *more)  # type: ignore[attr-defined]
    assert outcome(parse, text, *more) == fresh
    assert outcome(parse, text, *more) == fresh  # asked again: kept, or refused again


def test_repeated_text_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value seen before is not parsed again; a refusal is (its reason made anew);
    other types than text are parsed each time."""
    assert parse_budget("317万") == 3_170_000
    assert optional_code("XL-KEPT", 64) == "XL-KEPT"
    assert parse_gender("female") == "female"
    calls: list[object] = []
    real = identity.clean

    def counting(raw: object) -> str:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(values, "clean", counting)
    assert parse_budget("317万") == 3_170_000
    assert optional_code("XL-KEPT", 64) == "XL-KEPT"
    assert parse_gender("female") == "female"
    assert calls == []
    for _ in range(2):
        with pytest.raises(ValueError, match="not a number"):
            parse_budget("1-2万")
    assert parse_budget(3) == 3
    assert calls == ["1-2万", "1-2万", "1-2万", "1-2万"]  # twice for each refusal's reason
    assert parse_budget(raw="317万") == 3_170_000  # by keyword: the parser itself
    assert optional_code("XL-KEPT", limit=64) == "XL-KEPT"
    assert calls[4:] == ["317万", "XL-KEPT"]


# -- emails -------------------------------------------------------------------------------

@pytest.mark.parametrize("domain", ["arpa", "invalid", "local", "localhost", "onion", "test"])
def test_special_use_domains_are_left_to_email_validator(domain: str) -> None:
    assert identity._plain_email(f"a@b.{domain}") is None
    assert identity._plain_email(f"a@x.b.{domain}") is None
    assert identity._plain_email(f"a@b{domain}.com") == f"a@b{domain}.com"
    assert identity._plain_email(f"a@{domain}x.com") == f"a@{domain}x.com"


# -- the worker ---------------------------------------------------------------------------

class _Pipe:
    """The importer's end, as the reading worker sees it: takes every batch at once."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def poll(self) -> bool:
        return False

    def recv_bytes(self) -> bytes:
        return importrows._TAKEN

    def send_bytes(self, blob: bytes) -> None:
        self.sent.append(blob)

    def close(self) -> None:
        pass


def test_the_worker_packs_a_batch_with_its_collector_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Turned back on with a batch alive, the collector's first young collection walked
    the whole batch (and those set off while pickling it walked it again): it stays
    paused until the batch is sent and dropped, then runs again."""
    paused: list[bool] = []

    class CountingPickler(pickle.Pickler):
        def dump(self, obj: object) -> None:
            paused.append(not gc.isenabled())
            super().dump(obj)

    class Pickle:
        HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL
        loads = staticmethod(pickle.loads)
        Pickler = CountingPickler

        @staticmethod
        def dumps(obj: object, protocol: int | None = None) -> bytes:
            paused.append(not gc.isenabled())
            return pickle.dumps(obj, protocol)

    monkeypatch.setattr(importwire, "pickle", Pickle)  # the batches' pickler
    monkeypatch.setattr(importrows, "started", lambda: None)  # no signal handler here
    rows = [(i, {"name": f"n{i}", "mobile": f"1381234{i:04d}"}) for i in range(1, 6)]
    pipe = _Pipe()
    try:
        importrows._produce(pipe, _Pipe(), iter(rows), 2, "CN", None, None)  # type: ignore[arg-type]
        assert gc.isenabled()
    finally:
        gc.unfreeze()
    assert paused == [True, True, True]
    assert pipe.sent[-1] == b""
    checked = [pickle.loads(blob)[3] for blob in pipe.sent[:-1]]
    assert [(row, mobiles) for rows, columns, _ in checked
            for row, mobiles in zip(rows, columns[1], strict=True)] == [
        (i, [f"+861381234{i:04d}"]) for i in range(1, 6)]


@given(names=st.sampled_from([["name", "mobile", "手机", "email", "budget", "project"],
                              ["", "name", "mobile", "email", "budget", "gender"]]),
       width=st.integers(min_value=0, max_value=9),
       filled=st.lists(st.booleans(), min_size=9, max_size=9))
def test_a_header_maps_full_and_short_rows_as_before(names: list[str], width: int,
                                                    filled: list[bool]) -> None:
    """Full rows are mapped by one comprehension, short ones cell by cell: either way
    the non-empty cells by field, as the loop gave them."""
    header = map_header(names)
    row = [f"v{i}" if filled[i] else "" for i in range(width)]
    expected: dict[str, Any] = {}
    for index, name in header.columns:
        if index < len(row) and row[index]:
            expected[name] = row[index]
    for name, indexes in header.lists.items():
        expected[name] = [row[i] for i in indexes if i < len(row) and row[i]]
    assert header.values(row) == expected


@given(value=st.sampled_from(["", " ", "13812345678", "x"]) | st.text(max_size=4),
       extra=st.sampled_from([None, "13900000000", ["13900000001", ""], ("", None)]))
def test_a_single_mobile_cell_becomes_the_list_it_did(value: str, extra: Any) -> None:
    """``mobile`` as text (a CSV cell) with nothing else in ``mobiles`` takes a shortcut
    in ``CustomerIn``: the list is the one the general rule makes of ``[value]``."""
    from recrm_core.models.customers import CustomerIn

    data: dict[str, Any] = {"mobile": value, "mobiles": extra}
    general: dict[str, Any] = {"mobile": [value], "mobiles": extra}
    single = cast(Callable[[dict[str, Any]], Any], CustomerIn._single_values)
    assert single(data) == single(general)
    assert data == {"mobile": value, "mobiles": extra}  # the caller's dict untouched


# -- session 7: the field validators' text path, pickling dates -----------------------------

def test_a_text_cell_skips_scalar_and_the_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text goes straight to the parser (its kept results where it keeps them): with
    ``scalar`` and the kept-results wrapper's general path broken, a row of text cells
    still validates, and a value of another type still takes ``scalar``."""
    from recrm_core.models import base
    from recrm_core.models.customers import CustomerIn

    def broken(_v: object) -> object:
        raise AssertionError("scalar was called for text")

    monkeypatch.setattr(base, "scalar", broken)
    row = {"name": "董英", "mobile": "13652992312", "gender": "F", "source": "web",
           "project": "XL2", "persona": "刚需", "budget": "1,900,000", "owner_staff": "s036",
           "external_id": "E1", "source_system": "crm1"}
    record = CustomerIn.model_validate(row)
    assert (record.name, record.gender, record.persona, record.budget, record.project) == (
        "董英", "female", "first_time", 1_900_000, "XL2")
    with pytest.raises(ValidationError, match="scalar was called"):  # an int: scalar
        CustomerIn.model_validate({"mobile": "13652992312", "project": 7})


validator_inputs = st.one_of(
    cells, st.integers(min_value=-10, max_value=10**20), st.booleans(), st.none(),
    st.floats(allow_nan=False), st.lists(st.sampled_from(["m", "XL1", ""]), max_size=2),
    st.dictionaries(st.just("a"), st.just("b"), max_size=1),
)


def general_path(parse: Callable[..., Any], more: tuple[Any, ...], any_value: bool
                 ) -> Callable[[Any], Any]:
    """What the field validator was: ``parse(scalar(v), *more)`` (``parse(v)`` for a
    parser that reads any value), through the parser's kept-results wrapper."""
    from recrm_core.models.base import scalar

    return lambda v: parse(v, *more) if any_value else parse(scalar(v), *more)


@given(which=st.sampled_from(range(7)), value=validator_inputs)
@settings(max_examples=1500, deadline=None)
def test_a_field_validator_gives_what_the_general_path_gives(which: int, value: Any) -> None:
    """Each validator made by ``_parsed`` against ``parse(scalar(v))``: same value, or
    the same refusal and reason, whatever the input's type."""
    from recrm_core.models.base import _parsed

    validators: list[tuple[Callable[..., Any], tuple[Any, ...], bool]] = [
        (values.optional_text, (100,), False), (values.optional_text, (3,), False),
        (values.optional_code, (64,), False), (values.optional_code, (3,), False),
        (parse_gender, (), True), (parse_persona, (), True), (parse_budget, (), True),
    ]
    parse, more, any_value = validators[which]
    made = _parsed(parse, *more, any_value=any_value)
    assert outcome(made, value) == outcome(general_path(parse, more, any_value), value)


def test_kept_results_are_the_parsers_cache() -> None:
    """A parser that keeps results hands out its ``lru_cache``; any other, itself."""
    kept = values.kept_results(parse_gender)
    assert kept is not parse_gender
    assert kept("男") == "male"
    assert kept.cache_info().hits >= 0  # type: ignore[attr-defined]
    assert values.kept_results(values.optional_text) is values.optional_text


@given(days=st.lists(st.integers(min_value=1, max_value=dt.date.max.toordinal()), max_size=20),
       more=st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none()), max_size=5))
def test_a_batch_pickles_to_the_same_bytes(days: list[int], more: list[Any]) -> None:
    """Dates reduced by their own method give ``pickle.dumps``' very bytes (the
    importer unpickles what it always did); datetimes keep their own reduction."""
    dates = [dt.date.fromordinal(d) for d in days]
    sent = [(i, (date, more, (date, "x")), dt.datetime(2026, 12, 7, 4, 5))
            for i, date in enumerate(dates)]
    blob = importwire.pickled(sent)
    assert blob == pickle.dumps(sent, pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(blob) == sent


def test_one_packer_pickles_batch_after_batch_to_the_same_bytes() -> None:
    """The worker's one pickler, its memo cleared after each batch: each batch's bytes
    are ``pickle.dumps``' (memo numbers start again), and it holds no batch alive."""
    import sys

    pack = importwire.Packer()
    for n in range(1, 4):
        held = f"held-{n}"
        batch = [(i, (f"name{i}", [f"+86138{i:08d}"], dt.date(1990, 1, n), (held, "x")))
                 for i in range(200 * n)]
        references = sys.getrefcount(batch), sys.getrefcount(held)
        assert pack(batch) == pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
        assert (sys.getrefcount(batch), sys.getrefcount(held)) == references


@pytest.mark.parametrize("line", ["a,b,c", " ,b,", ",,", " , ,\u3000", "\t,,", ",, x", ""])
def test_a_blank_row_is_told_as_before(tmp_path: Any, line: str) -> None:
    """A row is blank when its cells joined are only spaces, whatever its first cell."""
    from recrm_core.csvsource import CsvSource

    path = tmp_path / "t.csv"
    path.write_text(f"name,mobile,email\n{line}\nlast,13812345678,\n", encoding="utf-8")
    with CsvSource(path) as source:
        got = [row for row, _data in source]
    cells = line.split(",")
    assert got == ([1] if "".join(cells).strip() == "" else [1, 2])
