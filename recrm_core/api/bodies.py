"""What a route's JSON body is annotated with: ``record: JsonBody[CustomerIn]``.

The request models are the SDK's own, which from code (or a workbook's cell) take a
number as its text; a client's JSON body takes text only where text is expected,
``{"name": 5}`` a 422 naming the field, nested models' fields too."""

from __future__ import annotations

from typing import Annotated, TypeVar

from ..models.base import JSON_BODY

_B = TypeVar("_B")

JsonBody = Annotated[_B, JSON_BODY]

__all__ = ["JsonBody"]
