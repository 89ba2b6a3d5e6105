"""The demo's anchor: the one moment its history is dated from."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ..db import utcnow

if TYPE_CHECKING:
    from ..crm import CRM


def demo_anchor(crm: CRM, now: dt.datetime | None = None) -> dt.datetime:
    """Midnight (business time, ``crm.config.zone``) of ``now``'s day (default: the
    clock's): the core's demo dates its history at hours of whole days before it, and
    ``recrm_demo`` hands it to every plugin, so that a window the plugins count (60
    days of visits, 24 months of points, a survey's deadline) takes in the same rows
    in the morning as in the afternoon. Computed once per demo: a run across midnight
    dates every part from the same day."""
    zone = crm.config.zone
    day = (now or utcnow()).astimezone(zone).date()
    return dt.datetime.combine(day, dt.time(), zone)
