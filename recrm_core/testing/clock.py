"""A clock for tests that must run the same code at another moment: the demo at nine
in the morning and at four in the afternoon, say. Only ``utcnow`` moves; a plugin
author passes the packages whose modules read it."""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import sys
import time
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from ..db import utcnow

if TYPE_CHECKING:
    import pytest


def set_clock(monkeypatch: pytest.MonkeyPatch, at: dt.datetime,
              packages: Iterable[ModuleType]) -> None:
    """From now on, ``utcnow`` in ``recrm_core`` and in ``packages`` starts at ``at``
    and moves on with real time (work takes time, as it does in production).
    Undone with ``monkeypatch``; ``at`` must be aware."""
    if at.tzinfo is None:
        raise ValueError("set_clock needs an aware datetime")
    start = time.monotonic()

    def now() -> dt.datetime:
        return (at + dt.timedelta(seconds=time.monotonic() - start)).astimezone(dt.UTC)

    roots = {"recrm_core"}
    for package in (importlib.import_module("recrm_core"), *packages):
        roots.add(package.__name__)
        # Modules a service imports on first use read the clock too: import them all
        # now, so that each one's name for utcnow is patched.
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations" not in found.name:  # Alembic's scripts run only under Alembic
                importlib.import_module(found.name)
    real = utcnow  # this module's own name for it is patched on the way
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in roots and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", now)


def morning_and_afternoon(day: dt.date, zone: dt.tzinfo = dt.timezone(dt.timedelta(hours=8)),
                          ) -> tuple[dt.datetime, dt.datetime]:
    """09:30 and 16:10 of ``day`` (business time, China's by default): two runs of
    work that must not depend on the time of day, with office hours in between."""
    return (dt.datetime.combine(day, dt.time(9, 30), zone),
            dt.datetime.combine(day, dt.time(16, 10), zone))
