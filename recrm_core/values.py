"""Parsers for the non-identity values people type into spreadsheets.

Each takes raw text (already usable on un-normalised input) and returns the
canonical value, ``None`` for an empty cell, or raises ``ValueError`` with a reason
a person can act on. Used by the pydantic models, so the API and the CSV import
accept exactly the same spellings.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache, wraps
from typing import Any, Literal, ParamSpec, TypeVar

from .identity import clean, code_of

Stage = Literal["prospect", "visitor", "subscriber", "buyer", "owner"]
STAGES: tuple[Stage, ...] = ("prospect", "visitor", "subscriber", "buyer", "owner")
STAGE_RANK: dict[str, int] = {s: i for i, s in enumerate(STAGES)}
#: the longest interaction recorded, in minutes: a day (a longer figure is a typing
#: mistake, and would swamp the staff report's contact hours)
MAX_MINUTES = 1440

Persona = Literal["first_time", "upgrader", "investor", "luxury", "retiree"]
PERSONAS: tuple[Persona, ...] = ("first_time", "upgrader", "investor", "luxury", "retiree")

_GENDERS = {
    "男": "male",
    "m": "male",
    "male": "male",
    "女": "female",
    "f": "female",
    "female": "female",
}

_PERSONAS: dict[str, str] = {p: p for p in PERSONAS} | {
    "刚需": "first_time",
    "改善": "upgrader",
    "投资": "investor",
    "高端": "luxury",
    "养老": "retiree",
    "first-time": "first_time",
    "first time": "first_time",
}

_DATE_PATTERNS = (
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
)

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
#: the largest budget the BIGINT column holds; beyond it SQLite and PostgreSQL fail
MAX_BUDGET = 2**63 - 1
#: what a refused budget's reason tells to give instead
_BUDGET_RANGE = f"give a whole amount in CNY from 0 to {MAX_BUDGET}"
_GROUPED_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _repeated(size: int) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """A parser whose results for text (``str``, what a CSV cell is) are kept, the
    ``size`` most recently used: an import's codes (project, source, consultant),
    genders, personas and budgets repeat from row to row, and parsing them anew was a
    quarter of the import worker's CPU (issue 21). The parsers are pure functions of
    their arguments and return immutable values, so a kept result is the result.
    Refusals are not kept (``lru_cache`` keeps no exception): a refused value is
    parsed again, its reason made as before. Other types (a workbook's numbers, the
    API's values) and keyword arguments take the parser itself."""

    def wrap(parse: Callable[_P, _T]) -> Callable[_P, _T]:
        kept = lru_cache(maxsize=size)(parse)

        @wraps(parse)
        def parse_repeated(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            if args and type(args[0]) is str and not kwargs:
                return kept(*args)
            return parse(*args, **kwargs)

        _KEPT[parse_repeated] = kept
        return parse_repeated

    return wrap


#: a parser made by :func:`_repeated` -> its kept results (the ``lru_cache`` itself)
_KEPT: dict[Callable[..., Any], Callable[..., Any]] = {}


def kept_results(parse: Callable[..., _T]) -> Callable[..., _T]:
    """What ``parse`` (made by :func:`_repeated`) calls for text: its kept results, to
    be called with text (a ``str``) and positional arguments only. A field validator
    that tells a text cell itself calls it at once: the wrapper's frame and its
    argument checks were a third of a kept code's cost, for five cells a row of an
    import. Any other parser is returned as it is."""
    return _KEPT.get(parse, parse)


@_repeated(256)
def parse_gender(raw: object) -> str | None:
    text = clean(raw)
    if not text:
        return None
    gender = _GENDERS.get(text.lower())
    if gender is None:
        raise ValueError(f"gender {text!r} is not one of 男/女/M/F/male/female")
    return gender


@_repeated(256)
def parse_persona(raw: object) -> str | None:
    text = clean(raw)
    if not text:
        return None
    persona = _PERSONAS.get(text.lower())
    if persona is None:
        raise ValueError(
            f"persona {text!r} is not one of {', '.join(PERSONAS)} or 刚需/改善/投资/高端/养老"
        )
    return persona


#: the days a person may enter (a filter, a receipt's or a handover's day): a day and
#: its midnight in any time zone stay storable, and year 1 or 9999 is a typing mistake
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(9998, 12, 31)


def check_day(day: dt.date) -> dt.date:
    """``day`` unchanged, or ValueError when it is outside :data:`FIRST_DAY` to
    :data:`LAST_DAY`: the one range of every day a person enters."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{day.isoformat()} is out of range ({FIRST_DAY.isoformat()} to"
                         f" {LAST_DAY.isoformat()})")
    return day


def parse_date(raw: object, *, not_after: dt.date | None = None) -> dt.date | None:
    if type(raw) is str and len(raw) == 10 and raw[4] == raw[7] == "-" and raw.isascii():
        # The common spelling (2024-01-02, an import's every row) read at once: the
        # date the first pattern gives it. fromisoformat takes this shape only with
        # ASCII digits (four, two, two) around the dashes: one C call where slicing
        # took a dozen steps. Anything else (and a failure: an unreal or future
        # date, to be refused with its reason) takes the patterns below.
        try:
            value = dt.date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if not_after is None or value <= not_after:
                return value
    if isinstance(raw, dt.date):
        # API callers pass date objects; the future-date bound applies to them too.
        value = raw.date() if isinstance(raw, dt.datetime) else raw
        if not_after is not None and value > not_after:
            raise ValueError(f"{value.isoformat()} is in the future")
        return value
    text = clean(raw)
    if not text:
        return None
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            try:
                value = dt.date(*(int(g) for g in match.groups()))
            except ValueError:
                raise ValueError(f"{text!r} is not a real date") from None
            if not_after is not None and value > not_after:
                raise ValueError(f"{text!r} is in the future")
            return value
    # A date cell stored as a number, written out: days since 1899-12-30 (five digits
    # are 1927 to 2173; a fraction is the time of day). Not converted: in a CSV file a
    # bare number may as well be a typing mistake.
    if re.fullmatch(r"\d{5}(?:\.\d+)?", text):
        raise ValueError(f"{text} looks like an Excel date serial: format the column as a date")
    raise ValueError(f"date {text!r} is not like 2024-01-02, 2024/1/2, 20240102 or 2024年1月2日")


#: the error values Excel and WPS show in a cell whose formula failed (openpyxl reads a
#: workbook's error cell as this text, and a CSV export writes it out as shown)
SPREADSHEET_ERRORS = frozenset((
    "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA",
    "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!",
    "#PYTHON!"))


def spreadsheet_error(text: str) -> str | None:
    """The reason a number field gives for ``text`` (a cleaned cell) when it is a
    spreadsheet's error value (``#DIV/0!``, ``#N/A``), else None: a formula failed in
    the sheet, which is no range or typing mistake to look for in the figure. The reason reads
    after the field's name ("budget is ...")."""
    if not text.startswith("#"):
        return None
    value = text.upper()
    if value not in SPREADSHEET_ERRORS:
        return None
    return (f"is the spreadsheet error value {value}, not a number: fix its formula in the"
            " sheet or clear the cell")


_WHOLE = re.compile(r"([+-]?[0-9]+)(?:\.0+)?")


def parse_whole(raw: object) -> int | None:
    """A whole number typed in a sheet (a floor, a count): ``12``, ``１２``, ``-1`` and
    ``12.0`` (a spreadsheet's number written out by a CSV export, as a mobile's
    ``13812345678.0`` is read); ``None`` for a blank cell. Else ValueError, whose reason
    reads after the field's name ("floor is ...")."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = clean(raw)
    if not text:
        return None
    whole = _WHOLE.fullmatch(text) if len(text) <= 20 else None
    if whole is None:
        raise ValueError(spreadsheet_error(text) or "is not a whole number")
    return int(whole.group(1))


#: what a money figure written in 万 or 亿 (``200万``, ``1.5亿``) is multiplied by
MONEY_UNITS = {"万": 10_000, "亿": 100_000_000}


def split_money_unit(text: str) -> tuple[str, int]:
    """``text`` without a trailing 元, 万元 or 亿元 (or 万, 亿), and what that unit
    multiplies the figure by (1 for 元 or none): the one rule of a budget and of a money
    amount (``units=True``), so a 销控表's ``250万元`` is the budget's ``250万``."""
    text = text.removesuffix("元").rstrip()
    for unit, multiplier in MONEY_UNITS.items():
        if text.endswith(unit):
            return text[:-1], multiplier
    return text, 1


@_repeated(4096)
def parse_budget(raw: object) -> int | None:
    """CNY as an integer: ``1,200,000``, ``200万``, ``1.5万`` (never negative or a range)."""
    if isinstance(raw, bool):
        raise ValueError("budget must be a number")
    if isinstance(raw, int):
        if raw < 0:
            raise ValueError(f"budget cannot be negative: {_BUDGET_RANGE}")
        if raw > MAX_BUDGET:
            raise ValueError(f"budget is too large: {_BUDGET_RANGE}")
        return raw
    if isinstance(raw, float):
        # A JSON number or a workbook cell: its own words, since its text ("1e+308",
        # "inf") read as a cell's was "not a number (ranges are not accepted)".
        if not math.isfinite(raw):
            raise ValueError(f"budget {raw} is not a number: {_BUDGET_RANGE}")
        if raw < 0:
            raise ValueError(f"budget cannot be negative: {_BUDGET_RANGE}")
        if raw > MAX_BUDGET:
            raise ValueError(f"budget is too large: {_BUDGET_RANGE}")
    text = clean(raw).replace(" ", "")
    if not text:
        return None
    for prefix in ("¥", "￥", "RMB", "CNY"):
        text = text.removeprefix(prefix)
    for suffix in ("RMB", "CNY"):
        text = text.removesuffix(suffix)
    text, multiplier = split_money_unit(text)
    if text.startswith("-"):
        raise ValueError(f"budget cannot be negative: {_BUDGET_RANGE}")
    if _GROUPED_NUMBER.fullmatch(text):
        text = text.replace(",", "")
    if not _NUMBER.fullmatch(text):
        if (failed := spreadsheet_error(text)) is not None:
            raise ValueError(f"budget {failed}")
        raise ValueError(f"budget {clean(raw)!r} is not a number (ranges are not accepted)")
    try:
        amount = Decimal(text) * multiplier
    except InvalidOperation:
        raise ValueError(f"budget {clean(raw)!r} is not a number") from None
    budget = int(amount.to_integral_value())
    if budget > MAX_BUDGET:
        raise ValueError(f"budget {clean(raw)!r} is too large: {_BUDGET_RANGE}")
    return budget


#: what Numeric(14, 2) holds: amounts are below 10^12
AMOUNT_LIMIT = Decimal("1e12")
_PLACES = {2: "two", 4: "four"}


def parse_amount(raw: object, *, places: int = 2, signed: bool = False,
                 units: bool = False) -> Decimal | None:
    """An exact amount (CNY, square metres, a percent) as a :class:`~decimal.Decimal`
    with ``places`` decimal places; ``None`` for ``None`` or a blank cell.

    Thousands separators (``1,200,000``) and a leading ``¥`` are accepted; with
    ``units`` (a money column, where a 销控表 writes total prices as ``150万``) so is a
    trailing 万 or 亿, as a budget takes it (:func:`split_money_unit`). Refused,
    never rounded: a float or a boolean (not exact), a number written with an
    exponent (``1e5``), NaN or infinity, more than ``places`` decimal places (0.001
    CNY is a typing mistake, not 0.00), 10^12 or more, and below 0 unless ``signed``.
    Each reason reads after the value's name ("deposit cannot be negative")."""
    if isinstance(raw, float | bool):
        raise ValueError("is not exact: give a decimal number (e.g. \"1000.50\"), never a float")
    if raw is None:
        return None
    shown = str(raw)[:40]
    multiplier = 1
    if isinstance(raw, Decimal) and raw.is_finite():
        text = f"{raw:f}"  # a Decimal given by code: its exact digits
    else:
        # NFKC as every cell (clean): full-width ２５０．５, ，, ￥ and － as ASCII
        text = clean(raw).replace(",", "").lstrip("¥").strip()
        if not text:
            return None
        if units:
            text, multiplier = split_money_unit(text)
            text = text.strip()
    try:
        parsed = Decimal(text)
    except InvalidOperation:
        raise ValueError(spreadsheet_error(text) or f"{shown!r} is not a number") from None
    if not parsed.is_finite():
        raise ValueError(f"{shown!r} is not a number")
    if "e" in text.lower():
        raise ValueError(f"{shown!r}: write it out in digits (no exponent)")
    parsed *= multiplier
    if abs(parsed) >= AMOUNT_LIMIT:
        raise ValueError("must be below 10^12")
    step = Decimal(1).scaleb(-places)
    if parsed != parsed.quantize(step, rounding=ROUND_HALF_UP):
        raise ValueError(f"{shown!r} has more than {_PLACES.get(places, places)} decimal places")
    if parsed < 0 and not signed:
        raise ValueError("cannot be negative")
    return parsed.quantize(step)


def parse_stage(raw: object) -> str:
    text = clean(raw).lower()
    if text not in STAGE_RANK:
        raise ValueError(f"stage {text!r} is not one of {', '.join(STAGES)}")
    return text


def optional_text(raw: object, limit: int) -> str | None:
    text = clean(raw)
    if not text:
        return None
    return _bounded(text, limit)


def required_text(raw: object, what: str, limit: int) -> str:
    """:func:`optional_text` for text that must be given (a name)."""
    return _required_of(optional_text, raw, what, limit)


#: C0 and C1 control characters and DEL (Unicode category Cc)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


#: codes repeat on every row of an import; external ids (also codes) do not, and each
#: takes the place of the least recently used: the repeated ones stay
@_repeated(1024)
def optional_code(raw: object, limit: int) -> str | None:
    """A code or identifier (project code, staff id, source, category, external id):
    :func:`~recrm_core.identity.clean_code`, ``None`` when blank, refused when nothing
    but invisible characters was given, it holds a control character or it is longer
    than ``limit``."""
    text = clean(raw)
    if not text:
        return None
    return _bounded(code_value(text), limit)


def code_value(text: str) -> str:
    """The code a :func:`~recrm_core.identity.clean` text stands for, or ValueError.

    Format characters go (:func:`~recrm_core.identity.code_of`); a control character
    is refused, not dropped: an escape sequence in a staff id or project code would
    repaint the terminal of whoever lists it, and a tab or newline in a key is a
    mistake to show, not to guess at. The reason names it by code point, never raw."""
    code = code_of(text)
    if not code:
        raise ValueError("has only invisible characters")
    control = _CONTROL.search(code)
    if control is not None:
        raise ValueError(f"contains a control character (U+{ord(control.group()):04X})")
    return code


def required_code(raw: object, what: str, limit: int) -> str:
    """:func:`optional_code` for a code that must be given; ``what`` opens the reason
    ("project code is empty")."""
    return _required_of(optional_code, raw, what, limit)


def _required_of(parse: Callable[[object, int], str | None], raw: object, what: str,
                 limit: int) -> str:
    try:
        value = parse(raw, limit)
    except ValueError as exc:
        raise ValueError(f"{what} {exc}") from None
    if value is None:
        raise ValueError(f"{what} is empty")
    return value


def _bounded(text: str, limit: int) -> str:
    if len(text) > limit:
        raise ValueError(f"is longer than {limit} characters")
    check_storable(text)
    return text


def check_storable(text: str) -> None:
    """Refuse what a database cannot store: NUL (PostgreSQL) and lone surrogates
    (undecodable bytes passed on a command line)."""
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid text (undecodable bytes)") from None


def zoned(value: dt.datetime | None, field: str) -> dt.datetime | None:
    """``value`` unchanged, or ValueError when it has no time zone (a naive time is
    ambiguous: the business's zone? UTC? and the database keeps UTC) or when its day,
    as written, is outside :func:`check_day`'s range (a visit in 1850 is a typing
    mistake, as a receipt's day is; the range keeps it storable in UTC too)."""
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{field} needs a time zone")
    if value is not None:
        try:
            check_day(value.date())
        except ValueError as exc:
            raise ValueError(f"{field} {exc}") from None
    return value


def finite_json(value: Any, field: str) -> Any:
    """``value`` unchanged, or ValueError when a number in it is NaN or infinite: JSON
    has no such numbers (PostgreSQL refuses them, SQLite would store null)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{field} holds a number JSON cannot carry ({item})")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return value
