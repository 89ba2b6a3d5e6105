"""Running the demo: seed the company, let every plugin seed its part, summarise."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .anchor import demo_anchor
from .planning import _Planner
from .seeding import _Seeder
from .summary import DemoSection, DemoSummary, summarise

if TYPE_CHECKING:
    from ..crm import CRM

DEMO_DB_FILE = "recrm-demo.db"
DEFAULT_SEED = 2024
DEFAULT_CUSTOMERS = 3000


def seed_demo(
    crm: CRM,
    *,
    seed: int = DEFAULT_SEED,
    customers: int = DEFAULT_CUSTOMERS,
    progress: Callable[[str], None] | None = None,
    anchor: dt.datetime | None = None,
) -> list[int]:
    """Write the demo company into ``crm`` (an empty database); returns the ids of
    the customers it created, in creation order. ``progress`` hears each step;
    ``anchor``: the midnight its history is dated from (default ``demo_anchor(crm)``)."""
    if customers < 1:
        raise ValueError("the demo needs at least one customer")
    people = _Planner(seed, customers).plan()
    return _Seeder(crm, people, anchor or demo_anchor(crm), progress).run()


def plugin_rng(seed: int) -> random.Random:
    """The generator handed to ``recrm_demo``: its own stream, so a change in how the
    core seeds does not change every plugin's data."""
    return random.Random(f"recrm-demo-plugins:{seed}")


def run_demo(
    crm: CRM,
    *,
    seed: int = DEFAULT_SEED,
    customers: int = DEFAULT_CUSTOMERS,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Seed the demo company, let every plugin seed its part, and summarise."""
    # One anchor for the core's history and every plugin's (``recrm_demo``).
    anchor = demo_anchor(crm)
    with _collector_for_bulk_work():
        ids = seed_demo(crm, seed=seed, customers=customers, progress=progress,
                        anchor=anchor)
        if progress is not None and crm.hooks.implemented("recrm_demo"):
            progress("plugins")
        sections = [_section(s) for s in crm.hooks.demo(crm, plugin_rng(seed), ids, anchor)]
    return summarise(crm, seed=seed, sections=sections)


@contextmanager
def _collector_for_bulk_work() -> Iterator[None]:
    """Python's cyclic collector tuned for seeding a company: the demo allocates
    millions of short-lived objects, and at the default gen-0 threshold (700) the
    collector ran thousands of times, its full collections walking everything the
    start-up left (modules, metadata, plugins): ~8 % of the demo's CPU (collector off:
    9.3-9.6 s against 10.1-10.4 s, alternating runs). Frozen, what exists before the
    seeding is out of its reach, and a higher threshold collects less often; what the
    seeding leaves in cycles is still collected (peak memory 145 MB against 143 MB).
    Restored afterwards, for an SDK caller's process."""
    import gc

    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _section(raw: Any) -> DemoSection:
    # Plugins may put numbers in their rows; the summary shows text.
    return DemoSection(
        title=str(raw.title), rows=[(str(label), str(value)) for label, value in raw.rows]
    )
