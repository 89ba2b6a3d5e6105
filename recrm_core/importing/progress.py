"""What an import run holds and reports: its progress, how it stops, a batch's outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import RecrmError
from ..models import Actor, ImportResult, RejectedRow
from ..tabular import TableSource

if TYPE_CHECKING:
    from ..importrows import EarlyWorker
    from ..keys import Keys


RejectSink = Callable[[RejectedRow], None]


@dataclass(frozen=True)
class ImportProgress:
    """Passed to the ``progress`` callback after every committed batch."""

    rows: int
    bytes_read: int = 0
    #: the file's size, when importing a file
    total_bytes: int | None = None
    #: data rows the reader has passed (rows skipped by ``start_after`` included)
    rows_read: int = 0
    #: of ``rows``: customers created, rows merged, rows rejected
    created: int = 0
    merged: int = 0
    rejected: int = 0


ProgressCallback = Callable[[ImportProgress], None]


class ImportStopped(RecrmError):
    """A batch could not be committed (a plugin raised): it was rolled back and the
    import stopped. Earlier batches stay committed; running the same import again
    is idempotent and finishes the rest. ``result`` counts the committed rows."""

    def __init__(
        self, message: str, result: ImportResult, plugin: str | None = None
    ) -> None:
        super().__init__(message)
        self.result = result
        self.plugin = plugin

    @property
    def committed_rows(self) -> int:
        return self.result.rows


class ImportInterrupted(KeyboardInterrupt):
    """Ctrl-C (or another KeyboardInterrupt) stopped the import; still a
    KeyboardInterrupt for whoever catches one. ``result`` counts the rows of the
    batches committed before it, so the CLI can say how far it got; running the same
    import again is idempotent and finishes the rest.

    In the main thread a first Ctrl-C takes effect once the batch being written has
    committed, so the count is exact; a second one stops at once, and then the batch
    in flight may have committed uncounted (``exact`` is False)."""

    def __init__(self, result: ImportResult, *, exact: bool) -> None:
        at_least = "" if exact else "at least "
        super().__init__(f"import interrupted: {at_least}{result.rows} row(s) were committed")
        self.result = result
        self.exact = exact

    @property
    def committed_rows(self) -> int:
        return self.result.rows


@dataclass
class _Applied:
    """What one batch did, counted once it commits."""

    created_ids: list[int]
    merged_rows: int
    conflicts: list[RejectedRow]
    new_projects: dict[str, int]


@dataclass
class _Run:
    result: ImportResult
    sinks: list[RejectSink]
    progress: ProgressCallback | None
    actor: Actor | None
    source: TableSource | None = None
    #: project code -> id, for projects known to be committed
    projects: dict[str, int] = field(default_factory=dict)
    #: ids created by this import as [first, last] runs (usually one run per batch)
    created_runs: list[list[int]] = field(default_factory=list)
    #: the keys of ID numbers, once a batch holding one has loaded them (the
    #: validation worker hashes and encrypts with them from then on)
    keys: Keys | None = None
    #: the validation worker forked for this file before the CRM was built (the CLI's)
    early: EarlyWorker | None = None

    def note_created(self, ids: list[int]) -> None:
        if not ids:
            return
        low, high = min(ids), max(ids)
        if high - low == len(ids) - 1:  # distinct ids: one run (a SQLite batch's are)
            if self.created_runs and self.created_runs[-1][1] == low - 1:
                self.created_runs[-1][1] = high
            else:
                self.created_runs.append([low, high])
            return
        for cid in ids:
            if self.created_runs and self.created_runs[-1][1] == cid - 1:
                self.created_runs[-1][1] = cid
            else:
                self.created_runs.append([cid, cid])
