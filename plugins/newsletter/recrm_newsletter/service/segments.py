"""Saved segments: a segment definition kept under a name, checked when saved."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from recrm_core import Actor, NotFound, require_role, utcnow

from ..tables import SegmentRow
from .rules import SENDERS, _name, _Service


class _Segments(_Service):
    """The saved segments."""

    def save_segment(self, name: str, definition: Mapping[str, Any],
                     actor: Actor | None = None) -> None:
        """Save (or replace) a segment definition under ``name``; checked first."""
        require_role(actor, SENDERS, "save segments")
        name = _name(name, "segment name")
        self.crm.segments.compile(definition)  # InvalidInput naming the place
        with self.crm.unit_of_work(actor) as uow:
            row = uow.session.get(SegmentRow, name)
            if row is None:
                uow.session.add(SegmentRow(name=name, definition=dict(definition),
                                           created_at=utcnow()))
            else:
                row.definition = dict(definition)

    def segments(self) -> dict[str, dict[str, Any]]:
        with self.crm.unit_of_work(readonly=True) as uow:
            return {r.name: r.definition for r in
                    uow.session.scalars(select(SegmentRow).order_by(SegmentRow.name))}

    def segment(self, name: str) -> dict[str, Any]:
        found = self.segments().get(name)
        if found is None:
            raise NotFound(f"no saved segment {name!r}")
        return found

    def count_segment(self, name: str, actor: Actor | None = None) -> int:
        return self.crm.segments.count(self.segment(name), actor=actor)

