"""Segments: JSON definitions compiled to SQL (placeholder until the segments stage lands)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement

if TYPE_CHECKING:
    from .crm import CRM


@dataclass(frozen=True)
class SegmentField:
    """A field segment definitions may filter on."""

    name: str
    expression: Callable[[ColumnElement[int]], ColumnElement[Any]]
    type: str = "str"
    description: str = ""


class SegmentService:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm
