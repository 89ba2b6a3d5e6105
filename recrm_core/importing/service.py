"""``crm.importer``: the import's public API and its batch loop."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, closing
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from ..access import check_writer
from ..contention import retrying
from ..csvsource import ImportFileError, ImportReadError, UndecodableSample
from ..db import UnitOfWork, chunks
from ..errors import PluginError, RecrmError
from ..errorsfile import ErrorsFile
from ..idcards import keys_for_storing
from ..importrecords import AT
from ..importrows import Batch as _Batch
from ..importrows import SourceRow as _SourceRow
from ..importrows import batches, claim_early
from ..models import Actor, ImportResult
from ..tables import CustomerRow
from ..tabular import open_table
from .batch import _apply
from .pauses import _gc_paused, _interrupt_between_batches
from .progress import (
    ImportInterrupted,
    ImportProgress,
    ImportStopped,
    ProgressCallback,
    RejectSink,
    _Applied,
    _Run,
)
from .walcheckpoints import checkpoints_spaced

if TYPE_CHECKING:
    from ..crm import CRM

_ID_CARD = AT["id_card"]


class ImportService:
    """``crm.importer``: bulk customer import from CSV files, workbooks or rows."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # -- public API -------------------------------------------------------------------
    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        encoding: str | None = None,
        sheet: str | None = None,
        errors_path: str | os.PathLike[str] | None = None,
        on_reject: RejectSink | None = None,
        progress: ProgressCallback | None = None,
        actor: Actor | None = None,
        start_after: int = 0,
    ) -> ImportResult:
        """Import a customer CSV file or .xlsx workbook (told apart by its bytes, see
        :func:`~recrm_core.tabular.open_table`); see the module docstring for the rules.

        ``errors_path`` receives one ``row,field,reason`` line per rejected row (UTF-8
        with BOM; a workbook's also gives ``sheet_row``), written as batches commit;
        ``on_reject`` is called likewise. ``sheet`` names the workbook's sheet (default:
        the first visible one); a missing one is ImportFileError, listing the sheets.

        Raises ImportFileError/UnknownColumns (exit 2) before writing anything (also
        when the encoding cannot be decided within the first batch), ImportReadError
        (exit 1) at an unreadable row after committing the rows before it,
        ImportStopped (exit 1) when a plugin fails. A row with invalid bytes in a
        mostly-UTF-8 file is rejected like an invalid one.

        ``start_after`` skips the first data rows unread by the import (they are still
        decoded): rows an interrupted run of the same file committed, so that resuming
        it (the HTTP API's import jobs) counts only the rest. The result counts the rows
        after it.
        """
        check_writer(actor)
        with open_table(path, encoding=encoding, sheet=sheet) as source, ExitStack() as stack:
            sinks: list[RejectSink] = [on_reject] if on_reject else []
            if errors_path is not None:
                errors = ErrorsFile(errors_path, sheet_rows=source.sheet is not None,
                                    reading=path)
                sinks.append(stack.enter_context(errors).write)
            run = _Run(ImportResult(), sinks, progress, actor, source)
            rows: Iterator[_SourceRow] = iter(source)
            if start_after > 0:
                rows = (item for item in rows if item[0] > start_after)
            else:  # the CLI's worker, if it forked one for this file (importrows)
                config = self.crm.config
                run.early = claim_early(source, encoding, config.import_batch_size,
                                        config.default_region)
            return self._run(run, rows)

    #: the name this method had before workbooks were read; the same method
    import_csv = import_file

    def import_rows(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        on_reject: RejectSink | None = None,
        progress: ProgressCallback | None = None,
        actor: Actor | None = None,
    ) -> ImportResult:
        """Import records given as mappings of CustomerIn fields (``mobile`` or
        ``mobiles``); row numbers are 1-based positions in ``rows``."""
        check_writer(actor)
        run = _Run(ImportResult(), [on_reject] if on_reject else [], progress, actor)
        return self._run(run, ((i, dict(r)) for i, r in enumerate(rows, start=1)))

    # -- the batch loop -----------------------------------------------------------------
    def _run(self, run: _Run, rows: Iterator[_SourceRow]) -> ImportResult:
        try:
            with _interrupt_between_batches(run), checkpoints_spaced(self.crm.engine):
                result = self._batches(run, rows)
        except ImportInterrupted:
            raise
        except KeyboardInterrupt as exc:
            raise ImportInterrupted(run.result.model_copy(), exact=False) from exc
        except RecrmError:
            if run.result.rows:
                self._audit(run, "stopped")
            raise
        self._audit(run, "completed")
        return result

    def _audit(self, run: _Run, outcome: str) -> None:
        """One audit entry per import: the counts, never a row's values (nor the file's
        name, which may hold one)."""
        r = run.result
        self.crm.audit.append("import", actor=run.actor, details={
            "outcome": outcome, "rows": r.rows, "created": r.created, "merged": r.merged,
            "rejected": r.rejected,
            "format": "xlsx" if run.source is not None and run.source.sheet is not None
            else ("csv" if run.source is not None else "rows"),
        })

    def _batches(self, run: _Run, rows: Iterator[_SourceRow]) -> ImportResult:
        config = self.crm.config
        with closing(batches(rows, config.import_batch_size, config.default_region,
                             run.source, lambda: run.keys, run.early)) as validated:
            while True:
                # The collector is off from taking a batch to its end, and back on only
                # once this loop has dropped it (see _gc_paused).
                with _gc_paused():
                    batch = next(validated, None)
                    if batch is None:
                        break
                    exc = batch.error
                    if exc is None:
                        self._commit(run, batch)
                        del batch
                        continue
                if isinstance(exc, UndecodableSample) and not run.result.rows:
                    # The encoding is unknown before a batch was committed: refuse the
                    # file as a whole (exit 2) rather than import its first rows.
                    raise ImportFileError(str(exc)) from None
                # Everything before the unreadable row is imported, so that the message
                # is exact and a re-run after fixing the file just continues.
                self._commit(run, batch)
                where = "there" if exc.stopped_at == exc.row else f"at row {exc.stopped_at}"
                raise ImportReadError(
                    exc.row,
                    f"{exc.reason}; the import stopped {where}, {run.result.rows} row(s)"
                    " before it were imported",
                    stopped_at=exc.stopped_at,
                ) from None
        run.result.suspected_duplicates = self._suspected_duplicates(run)
        return run.result

    def _commit(self, run: _Run, batch: _Batch) -> None:
        if not batch.rows:
            return
        if run.keys is None and any(batch.columns[_ID_CARD]):
            # Loaded before the transaction: their first use records the key file's
            # fingerprint in a transaction of its own, which on SQLite would wait for
            # ours. A file without ID numbers needs no key file.
            run.keys = keys_for_storing(self.crm)
        def attempt() -> _Applied:
            with self.crm.unit_of_work(run.actor) as uow:
                return self._apply(uow, run, batch)

        try:
            # A concurrent importer took a key (or a project code) between our read
            # and our write, or the two deadlocked: the batch rolled back whole, so
            # resolve it again against what the other one wrote.
            applied = retrying(attempt)
        except PluginError as exc:
            done = run.result
            raise ImportStopped(
                f"import stopped at rows {batch.first_row}-{batch.last_row}: {exc}; "
                f"that batch was rolled back, {done.rows} row(s) before it were committed"
                f" ({done.created} created, {done.merged} merged, {done.rejected}"
                " rejected); running the same import again is safe and finishes the rest",
                done.model_copy(),
                plugin=exc.plugin,
            ) from exc
        result = run.result
        result.rows += batch.rows
        result.created += len(applied.created_ids)
        result.merged += applied.merged_rows
        rejected = batch.rejected + applied.conflicts
        result.rejected += len(rejected)
        run.projects.update(applied.new_projects)
        run.note_created(applied.created_ids)
        if run.sinks and rejected:
            rejected.sort(key=lambda r: r.row)
            for rej in rejected:
                if rej.sheet_row is None and batch.sheet_rows:
                    rej.sheet_row = batch.sheet_rows.get(rej.row)
                for sink in run.sinks:
                    sink(rej)
        if run.progress is not None:
            source = run.source
            run.progress(
                ImportProgress(
                    rows=result.rows,
                    # as read up to this batch: the reader may be batches ahead
                    bytes_read=batch.bytes_read,
                    total_bytes=source.total_bytes if source else None,
                    rows_read=batch.rows_read if source else result.rows,
                    created=result.created,
                    merged=result.merged,
                    rejected=result.rejected,
                )
            )

    # -- one batch ----------------------------------------------------------------------
    def _apply(self, uow: UnitOfWork, run: _Run, batch: _Batch) -> _Applied:
        return _apply(self.crm, uow, run, batch)

    def _suspected_duplicates(self, run: _Run) -> int:
        """Customers this import created whose email another active customer has."""
        if not run.created_runs:
            return 0
        mine = aliased(CustomerRow)
        other = aliased(CustomerRow)
        total = 0
        with self.crm.unit_of_work(readonly=True) as uow:
            lateral = uow.session.get_bind().dialect.name == "postgresql"
            for chunk in chunks(run.created_runs, 100):
                if lateral:
                    # One probe of the email index per customer. Without statistics
                    # the planner took the table for a few rows and ran the EXISTS
                    # as a scan of the index on merged_into (every active customer)
                    # per customer: 3.3 s for 5,000 rows into 5,000, quadratic. A
                    # LATERAL subquery fenced by OFFSET runs once per row, keeps the
                    # conditions outside it, and has only the email index to use.
                    probe = select(other.id, other.merged_into).where(
                        other.email == mine.email).offset(0).lateral()
                    query = select(func.count(mine.id.distinct())).select_from(mine).join(
                        probe, and_(probe.c.id != mine.id, probe.c.merged_into.is_(None)))
                else:
                    query = select(func.count()).select_from(mine).where(exists().where(
                        other.email == mine.email, other.id != mine.id,
                        other.merged_into.is_(None)))
                total += uow.session.scalar(query.where(
                    or_(*(mine.id.between(first, last) for first, last in chunk)),
                    mine.email.is_not(None),
                )) or 0
        return total
