"""Exact amounts: CNY and ㎡ as :class:`~decimal.Decimal` with two places, never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator

from recrm_core import InvalidInput
from recrm_core.values import parse_amount

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def amount(value: Decimal | int | str | None, what: str, *, signed: bool = False,
           positive: bool = False, units: bool = False) -> Decimal:
    """``value`` as an exact two-place decimal (the core's
    :func:`~recrm_core.values.parse_amount`), or InvalidInput naming ``what``; one must
    be given, and ``positive`` refuses 0; ``units`` takes a figure in 万 or 亿."""
    if value is None:
        raise InvalidInput(what, f"give {what} as a decimal number (never a float)")
    try:
        parsed = parse_amount(value, signed=signed, units=units)
    except ValueError as exc:
        raise InvalidInput(what, f"{what} {exc}") from None
    if parsed is None:
        raise InvalidInput(what, f"{what}: {str(value)[:40]!r} is not a number")
    if positive and parsed <= 0:
        raise InvalidInput(what, f"{what} must be more than 0")
    return parsed


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
