"""Exact amounts: CNY and ㎡ as :class:`~decimal.Decimal` with two places, never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator

from recrm_core import InvalidInput

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
#: what Numeric(14, 2) holds
LIMIT = Decimal("1e12")


def amount(value: Decimal | int | str | None, what: str, *, signed: bool = False,
           positive: bool = False) -> Decimal:
    """``value`` as an exact two-place decimal, or InvalidInput naming ``what``: 0 or
    more (``positive``: more than 0; ``signed``: any sign), below 10^12, at most two
    decimal places (more is refused, never rounded), written out (no exponent such as
    ``1e5``). Thousands separators (``1,200,000``) and a leading ``¥`` are accepted."""
    if value is None or isinstance(value, float | bool):
        raise InvalidInput(what, f"give {what} as a decimal number (never a float)")
    text = str(value).strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    shown = str(value)[:40]
    if isinstance(value, Decimal) and value.is_finite():
        text = f"{value:f}"  # a Decimal given by code: its exact digits
    try:
        parsed = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(what, f"{what}: {shown!r} is not a number") from None
    if not parsed.is_finite():
        raise InvalidInput(what, f"{what}: {shown!r} is not a number")
    if "e" in text.lower():
        raise InvalidInput(what, f"{what}: write {shown!r} out in digits (no exponent)")
    if abs(parsed) >= LIMIT:
        raise InvalidInput(what, f"{what} must be below 10^12")
    if parsed != parsed.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidInput(what, f"{what}: {shown!r} has more than two decimal places")
    if parsed < 0 and not signed:
        raise InvalidInput(what, f"{what} cannot be negative")
    if positive and parsed <= 0:
        raise InvalidInput(what, f"{what} must be more than 0")
    return parsed.quantize(CENT)


def _not_a_float(value: Any) -> Any:
    """JSON money is a decimal string or an integer; a float (or a boolean) is refused."""
    if isinstance(value, float | bool):
        raise ValueError("give an exact decimal string (e.g. \"1000.50\"), never a float")
    if isinstance(value, str) and "e" in value.lower():
        raise ValueError("write the number out in digits (no exponent such as 1e5)")
    return value


#: a Decimal field of an input model: a JSON float or an exponent form is refused (422),
#: a decimal string or an integer is taken; :func:`amount` then checks it as on every other path
Exact = Annotated[Decimal, BeforeValidator(_not_a_float)]


def whole_yuan(value: Decimal) -> int:
    """The core's whole-yuan amount of an exact one (rounded half up)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
