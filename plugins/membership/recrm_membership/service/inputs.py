"""What the club takes from people: free text, keys, projects and points, checked."""

from __future__ import annotations

from recrm_core import (
    InvalidInput,
    check_storable,
    clean_code,
    project_code,
)
from recrm_core.values import code_value

from ..settings import MAX_POINTS


def _storable(value: str | None, field: str) -> str | None:
    """``value`` unless a database cannot store it: NUL (PostgreSQL text refuses it) or
    a lone surrogate (what undecodable command-line bytes become) is InvalidInput."""
    if value is not None:
        try:
            check_storable(value)
        except ValueError:
            raise InvalidInput(field, f"{field} contains a NUL or an invalid character") \
                from None
    return value


def _clean(value: object, field: str, limit: int, *, required: bool = True,
           code: bool = False) -> str | None:
    """Free text with its runs of whitespace collapsed, or with ``code`` a key (an
    event kind or reference) without invisible characters, so that ``gift\u200b``
    cannot award ``gift`` a second time."""
    text = " ".join((clean_code(value) if code else "" if value is None else str(value)).split())
    _storable(text, field)
    if code and text:
        try:  # the core's rule for keys: a control character is refused, never kept
            text = code_value(text)
        except ValueError as exc:
            raise InvalidInput(field, f"{field} {exc}") from None
    if not text:
        if required:
            raise InvalidInput(field, f"{field} is empty")
        return None
    if len(text) > limit:
        raise InvalidInput(field, f"{field} is longer than {limit} characters")
    return text


def _optional_project(raw: object) -> str | None:
    """A project code as the core writes it (trimmed, NFKC), or None for blank."""
    if raw is None or not str(raw).strip():
        return None
    _storable(str(raw), "project")
    return project_code(raw)


def _positive(points: object, field: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput(field, "points must be a whole number")
    if points <= 0:
        raise InvalidInput(field, "points must be positive")
    if points > MAX_POINTS:
        raise InvalidInput(field, f"points must be at most {MAX_POINTS}")
    return points
