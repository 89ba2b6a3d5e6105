"""What a writer does when another writer got there first.

Concurrent writers are decided by the database: a UNIQUE constraint refuses the
second insert of a key, PostgreSQL breaks a lock cycle by failing one transaction
with a deadlock, and a row locked for update may have changed by the time the lock
is granted. In each case the loser's transaction is rolled back whole and the
operation is decided again from scratch against what the winner wrote. This module
is the one place that says which failures are such collisions and how often, and
how patiently, to try again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

from .errors import PluginError

_T = TypeVar("_T")

#: PostgreSQL SQLSTATEs of a transaction that lost to a concurrent one
#: (deadlock_detected, serialization_failure, lock_not_available)
_LOST_RACE_STATES = frozenset({"40P01", "40001", "55P03"})

#: attempts before a collision is reported; with the backoff below that is several
#: seconds of waiting, enough for four importers of overlapping files to all finish
ATTEMPTS = 12


class StateMoved(Exception):
    """Raised inside a unit of work when rows it locked changed since it read them
    (another writer merged them meanwhile): roll back and decide again."""


def is_collision(exc: BaseException) -> bool:
    """Whether ``exc`` means a concurrent writer won, so a retry may succeed."""
    if isinstance(exc, StateMoved | IntegrityError):
        return True
    if isinstance(exc, PluginError):
        # A plugin's statement chosen as a deadlock victim is not the plugin's fault;
        # its own UNIQUE violations are (plugins insert-or-ignore), so they stay errors.
        return _lost_lock_race(exc.__cause__)
    return _lost_lock_race(exc)


def _lost_lock_race(exc: BaseException | None) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state in _LOST_RACE_STATES


def backoff(attempt: int) -> None:
    """Sleep before attempt ``attempt + 1``: exponential, capped, with jitter so two
    losers of the same race do not collide again in lockstep."""
    delay = min(0.01 * (2**attempt), 0.5)
    time.sleep(delay * random.uniform(0.5, 1.5))


def retrying(work: Callable[[], _T], attempts: int = ATTEMPTS) -> _T:
    """``work()``, called again (after a backoff) while it fails with a collision;
    the last collision is raised as it is."""
    for attempt in range(attempts):
        try:
            return work()
        except Exception as exc:
            if not is_collision(exc) or attempt == attempts - 1:
                raise
        backoff(attempt)
    raise AssertionError("unreachable")
