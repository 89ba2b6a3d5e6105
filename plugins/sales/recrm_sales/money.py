"""Exact amounts: CNY and ㎡ as :class:`~decimal.Decimal` with two places, never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from recrm_core import InvalidInput

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
#: what Numeric(14, 2) holds
LIMIT = Decimal("1e12")


def amount(value: Decimal | int | str | None, what: str, *, signed: bool = False,
           positive: bool = False) -> Decimal:
    """``value`` as an exact two-place decimal (half up), or InvalidInput naming
    ``what``: 0 or more (``positive``: more than 0; ``signed``: any sign), below 10^12.
    Thousands separators (``1,200,000``) and a leading ``¥`` are accepted."""
    if value is None or isinstance(value, float | bool):
        raise InvalidInput(what, f"give {what} as a decimal number (never a float)")
    text = str(value).strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    try:
        parsed = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(what, f"{what}: {str(value)[:40]!r} is not a number") from None
    if not parsed.is_finite() or abs(parsed) >= LIMIT:
        raise InvalidInput(what, f"{what} must be below 10^12")
    if parsed < 0 and not signed:
        raise InvalidInput(what, f"{what} cannot be negative")
    if positive and parsed <= 0:
        raise InvalidInput(what, f"{what} must be more than 0")
    return parsed.quantize(CENT, rounding=ROUND_HALF_UP)


def whole_yuan(value: Decimal) -> int:
    """The core's whole-yuan amount of an exact one (rounded half up)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
