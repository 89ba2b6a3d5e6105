"""The demo company (placeholder until the demo stage lands)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoSection:
    """A plugin's section of the demo summary: a title and (label, value) rows."""

    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
