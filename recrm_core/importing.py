"""Customer import: streamed in batches, resolved set-based, one transaction per batch.

Each batch (``import_batch_size`` rows, default 2000) is validated row by row with
:class:`~recrm_core.models.CustomerIn`, then resolved with the same rules as
``crm.customers.add`` (:mod:`recrm_core.resolution`) but set-based: the owners of
every key of the batch are fetched with a few indexed queries, the rows are applied
strictly in file order in memory (a row sees what earlier rows created or filled,
in this batch or an earlier one), and the result is written with bulk inserts and
updates (on PostgreSQL the lookups and inserts go through :mod:`recrm_core.bulkcopy`:
index probes bound to one array parameter, and COPY). ``recrm_customers_imported``
fires once per batch inside its transaction; the per-row created/updated hooks do not
fire during an import.

Re-running an import is idempotent: every row of a committed batch now matches the
customer it created or filled, so nothing is created twice.
"""

from __future__ import annotations

import functools
import gc
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast, overload

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased

from . import bulkcopy, sqlitebatch
from .access import check_writer
from .contention import retrying
from .csvsource import (
    ImportFileError,
    ImportReadError,
    UndecodableSample,
    UnknownColumns,
)
from .customers import load_customers, owners_of_keys
from .db import UnitOfWork, chunks, utcnow
from .directory import refused_staff
from .errors import PluginError, RecrmError, UnknownProject
from .errorsfile import ErrorsFile
from .idcards import keys_for_storing
from .importrows import Batch as _Batch
from .importrows import Identity, batches, derived, validate_row
from .importrows import Record as _Record
from .importrows import SourceRow as _SourceRow
from .models import (
    Actor,
    Customer,
    ImportedCustomer,
    ImportResult,
    OwnerChange,
    RejectedRow,
    trusted,
)
from .projects import ensure_project_id
from .resolution import (
    CONFLICT_FIELD,
    EXTERNAL,
    ID_CARD,
    MOBILE,
    STATE_FIELDS,
    WECHAT,
    Key,
    conflict_field,
    external_key,
    fill_changes,
    match_record,
)
from .tables import CustomerProjectRow, CustomerRow, IdentityRow, ProjectRow
from .tabular import TableSource, open_table

if TYPE_CHECKING:
    from .crm import CRM
    from .keys import Keys

_HOOK = "recrm_customers_imported"
_OWNERS_HOOK = "recrm_owners_changed"
#: the ``changed`` name of each identity kind
_KEY_FIELDS = {MOBILE: "mobiles", ID_CARD: "id_card", WECHAT: "wechat_unionids"}

_CUSTOMERS = cast(Table, CustomerRow.__table__)
_IDENTITIES = cast(Table, IdentityRow.__table__)
_LINKS = cast(Table, CustomerProjectRow.__table__)
_PROJECTS = cast(Table, ProjectRow.__table__)
_STATE_FIELDS = STATE_FIELDS
_state_values = itemgetter(*_STATE_FIELDS)
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


@contextmanager
def _interrupt_between_batches(run: _Run) -> Iterator[None]:
    """Defer a first Ctrl-C to the end of the batch being written: inside its commit
    the batch may be committed and not yet counted, and the count is what the person
    needs to hear. Only where Python's own SIGINT handler is in place (the main
    thread, no handler of the caller's)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    asked: list[bool] = []

    def note(signum: int, frame: object) -> None:
        asked.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one: at once

    report = run.progress

    def after_batch(progress: ImportProgress) -> None:  # called once a batch is counted
        if report is not None:
            report(progress)
        if asked:
            raise ImportInterrupted(run.result.model_copy(), exact=True)

    run.progress = after_batch
    signal.signal(signal.SIGINT, note)
    try:
        yield
        if asked:  # during the last steps, after the last batch
            raise ImportInterrupted(run.result.model_copy(), exact=True)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run.progress = report


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is received, resolved and written.

    A batch allocates ~15 objects a row (its records, keys, state, links, references)
    and holds them to its end: the collector ran over and over during it, walking
    every one of them and the whole heap of the process. Turned back on only once
    the batch is dropped, the collector's next (young) collection finds the few
    cycles the batch left (the session's) and not its ~100,000 live objects: turned
    on while the batch was still held, that one collection per batch cost ~15 % of
    the importing process (20-50 ms a batch). Memory stays flat.
    The switch is process-wide: if something else already turned the collector off
    it is left alone (and so never turned on early by us).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        # What the batch left in cycles goes now, not after many batches: the young
        # generation counts only the allocations that outlived the batch, so left to
        # the collector's own threshold a dozen batches' cycles (the session, and
        # closures holding a batch's state) piled up: 318 MB at 1M rows.
        gc.collect(0)


class _NewRef(int):
    """A customer created by an earlier row of the batch, as a conflict names it: the
    batch knows it by a negative number (never a real id) until it is written, and a
    message by its row."""

    row: int

    def __new__(cls, value: int, row: int) -> _NewRef:
        ref = super().__new__(cls, value)
        ref.row = row
        return ref

    def __str__(self) -> str:
        return f"the new customer of row {self.row}"

    __repr__ = __str__


@dataclass
class _Link:
    """A customer-project link: existing (``id``) or to be inserted (``id`` None)."""

    id: int | None
    owner_staff: str | None
    source: str | None


class _LazyRecords(Sequence[ImportedCustomer]):
    """``recrm_customers_imported``'s records, built on first access (read-only).

    A batch's records cost ~10 % of the importing process, and the core's own
    webhooks implement the hook whether or not a subscription wants its events; an
    implementation that does not read them pays nothing. Its length is known without
    building them. Equal to any sequence of the same records (e.g. a list).
    """

    __slots__ = ("_build", "_items", "_len")

    def __init__(self, build: Callable[[], list[ImportedCustomer]], length: int) -> None:
        self._build: Callable[[], list[ImportedCustomer]] | None = build
        self._items: list[ImportedCustomer] = []
        self._len = length

    def _all(self) -> list[ImportedCustomer]:
        if self._build is not None:
            self._items, self._build = self._build(), None
        return self._items

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> ImportedCustomer: ...
    @overload
    def __getitem__(self, index: slice) -> list[ImportedCustomer]: ...
    def __getitem__(self, index: int | slice) -> ImportedCustomer | list[ImportedCustomer]:
        return self._all()[index]

    def __iter__(self) -> Iterator[ImportedCustomer]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self._all() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all())


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

    def note_created(self, ids: list[int]) -> None:
        for cid in ids:
            if self.created_runs and self.created_runs[-1][1] == cid - 1:
                self.created_runs[-1][1] = cid
            else:
                self.created_runs.append([cid, cid])


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
            if errors_path is not None and _same_file(path, errors_path):
                # Opening the errors file for writing would truncate the file being read.
                raise ImportFileError(
                    f"the errors file {os.fspath(errors_path)!r} is the file being imported"
                )
            sinks: list[RejectSink] = [on_reject] if on_reject else []
            if errors_path is not None:
                errors = ErrorsFile(errors_path, sheet_rows=source.sheet is not None)
                sinks.append(stack.enter_context(errors).write)
            run = _Run(ImportResult(), sinks, progress, actor, source)
            rows: Iterator[_SourceRow] = iter(source)
            if start_after > 0:
                rows = (item for item in rows if item[0] > start_after)
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
            with _interrupt_between_batches(run):
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
                             run.source, lambda: run.keys)) as validated:
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
        if run.keys is None and any(rec.id_card for _, rec in batch.valid):
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
        session = uow.session
        conn = session.connection()
        now = utcnow()
        records = batch.valid

        codes = {rec.project for _, rec in records if rec.project}
        pids, new_projects = self._project_ids(
            session, conn, run.projects, codes, create=self.crm.config.auto_create_projects
        )

        # Per record: its keys and a new customer's identities, as the worker derived
        # them, or derived here for rows validated before the keys were loaded.
        keys_of: list[list[Key]] = []
        identities_of: list[tuple[Identity, ...]] = []
        for _, rec in records:
            rec_keys, identities = rec.keys, rec.identities
            if rec_keys is None or identities is None:
                rec_keys, identities = derived(rec, run.keys)
                assert rec_keys is not None and identities is not None  # run.keys is loaded
            keys_of.append(rec_keys)
            identities_of.append(identities)
        owners = owners_of_keys(conn, set(chain.from_iterable(keys_of)))
        existing = sorted(set(owners.values()))
        state = _customer_state(conn, existing)
        cards = _id_cards(conn, existing)
        links = _links_of(conn, existing, sorted(set(pids.values())))

        #: the row of each customer this batch creates; the customer of new_rows[i] is
        #: known as -(i + 1) until written (see _NewRef)
        new_rows: list[int] = []
        created: list[tuple[Any, ...]] = []  # per new customer: its STATE_FIELDS
        new_identities: list[tuple[int, str, str, str]] = []  # customer, kind, value, display
        new_links: dict[tuple[int, int], _Link] = {}
        filled_links: dict[int, _Link] = {}
        touched: set[int] = set()
        merged_existing: dict[int, None] = {}  # ordered set: each matched customer once
        merged_rows = 0
        conflicts: list[RejectedRow] = []
        # What the hook is told: the rows behind each customer and the fields changed.
        rows_of: dict[int, list[int]] = {}
        changed_of: dict[int, set[str]] = {}
        new_info: list[tuple[list[Key], bool]] = []  # per new customer: its keys, a project?
        owner_events: list[tuple[int, int, str, str]] = []  # customer, project, new owner, why

        def link(cid: int, rec: _Record) -> bool:
            """Link to the row's project, filling source/owner when empty; changed?"""
            pid = pids[rec.project]  # type: ignore[index]  # only called with one
            target = new_links.get((cid, pid)) or links.get((cid, pid))
            if target is None:
                new_links[(cid, pid)] = _Link(None, rec.owner_staff, rec.source)
                if rec.owner_staff:
                    owner_events.append((cid, pid, rec.owner_staff, "first_link"))
                return True
            changed = False
            if target.owner_staff is None and rec.owner_staff:
                target.owner_staff, changed = rec.owner_staff, True
                owner_events.append(
                    (cid, pid, rec.owner_staff, "first_link" if target.id is None else "filled")
                )
            if target.source is None and rec.source:
                target.source, changed = rec.source, True
            if changed and target.id is not None:
                filled_links[target.id] = target
            return changed

        def named(cid: int | None) -> int | None:
            """A customer as a message names it: a new one after its row."""
            return cid if cid is None or cid > 0 else _NewRef(cid, new_rows[-cid - 1])

        def owner_of(key: Key) -> int | None:
            return named(owners.get(key))

        bad_staff = refused_staff(conn, self.crm.config.require_known_staff,
                                  (rec.owner_staff for _, rec in records))
        for (row, rec), rec_keys, identities in zip(records, keys_of, identities_of,
                                                    strict=True):
            project = rec.project
            if project and project not in pids:
                conflicts.append(
                    RejectedRow(row=row, field="project", reason=str(UnknownProject(project)))
                )
                continue
            if bad_staff and rec.owner_staff in bad_staff:
                conflicts.append(RejectedRow(row=row, field="owner_staff",
                                             reason=str(bad_staff[rec.owner_staff])))
                continue
            for key in rec_keys:
                if key in owners:
                    match = match_record(rec, owner_of, cards.get, rec_keys)
                    break
            else:
                # No key is known: a new customer (what match_record would say, without
                # its work), with what the worker derived for it.
                ref = -(len(new_rows) + 1)
                new_rows.append(row)
                created.append(rec.state)
                for key in rec_keys:
                    owners[key] = ref
                for identity in identities:
                    new_identities.append((ref, *identity))
                if rec.id_card is not None:
                    cards[ref] = next(v for k, v in rec_keys if k == ID_CARD)
                if project:
                    # a new customer's first link: nothing to look up
                    pid = pids[project]
                    owner = rec.owner_staff
                    new_links[(ref, pid)] = _Link(None, owner, rec.source)
                    if owner:
                        owner_events.append((ref, pid, owner, "first_link"))
                # What the hook is told about it (its first row is new_rows[i]; later
                # rows of the batch that match it go to rows_of/changed_of): built only
                # if the records are read.
                new_info.append((rec_keys, bool(project)))
                continue
            if match.conflict:
                conflicts.append(
                    RejectedRow(row=row, field=conflict_field(rec), reason=match.conflict))
                continue
            cid = match.customer_id
            assert cid is not None  # a match without a conflict names its customer
            merged_rows += 1
            current = state.get(cid)
            if current is None:  # the new customer of an earlier row: its state to fill
                current = state[cid] = dict(zip(STATE_FIELDS, created[-cid - 1], strict=True))
            changes = fill_changes(current, rec)
            for name, (_, new) in changes.items():
                current[name] = new
            changed = bool(changes)
            rows_of.setdefault(cid, []).append(row)
            fields = changed_of.setdefault(cid, set())
            fields.update(changes)
            if "external_id" in changes:
                owners[(EXTERNAL, external_key(current["source_system"], rec.external_id or ""))] \
                    = cid
            shown = {(kind, value): display for kind, value, display in identities}
            for key in rec_keys:
                if key[0] != EXTERNAL and key not in owners:
                    owners[key] = cid
                    new_identities.append((cid, *key, shown[key]))
                    if key[0] == ID_CARD:
                        cards[cid] = key[1]
                    fields.add(_KEY_FIELDS[key[0]])
                    changed = True
            if project and link(cid, rec):
                fields.add("projects")
                changed = True
            if cid > 0:
                merged_existing[cid] = None
                if changed:
                    touched.add(cid)

        for i, held in state.items():  # new customers filled by later rows of the batch
            if i < 0:
                created[-i - 1] = _state_values(held)
        new_refs = list(range(-1, -len(new_rows) - 1, -1))
        real = self._write(
            conn, now, new_refs, created, state, new_identities, new_links, filled_links, touched
        )
        created_ids = list(real.values())
        if owner_events and self.crm.hooks.implemented(_OWNERS_HOOK):
            code_of = {pid: code for code, pid in pids.items()}
            self.crm.hooks.owners_changed(uow, [
                trusted(OwnerChange, {"customer_id": real.get(cid, cid),
                                      "project": code_of[pid], "old_owner": None,
                                      "new_owner": owner, "reason": why})
                for cid, pid, owner, why in owner_events
            ])
        if self.crm.hooks.implemented(_HOOK):
            # Customers created by this batch are reported as created only, even when
            # later rows of the batch matched them. Full models only on request: most
            # plugins need the ids and what changed, and building models for every
            # merged customer cost a quarter of the import's speed. The records
            # themselves are built on first access: the core's webhooks implement this
            # hook and, with no subscription wanting the events, never read them
            # (building them was ~10 % of the importing process).
            def build() -> list[ImportedCustomer]:
                out = []
                for ref, first_row, row_state, (ref_keys, has_project) in zip(
                        new_refs, new_rows, created, new_info, strict=True):
                    fields = {name for name, v in zip(STATE_FIELDS, row_state, strict=True)
                              if v is not None}
                    fields.update(_KEY_FIELDS[kind] for kind, _ in ref_keys
                                  if kind in _KEY_FIELDS)
                    if has_project:
                        fields.add("projects")
                    fields.update(changed_of.get(ref, ()))
                    out.append(trusted(ImportedCustomer, {
                        "customer_id": real[ref], "created": True,
                        "changed": sorted(fields), "rows": [first_row, *rows_of.get(ref, ())]}))
                out.extend(
                    trusted(ImportedCustomer, {"customer_id": cid, "created": False,
                                               "changed": sorted(changed_of[cid]),
                                               "rows": rows_of[cid]})
                    for cid in merged_existing
                )
                return out

            imported = _LazyRecords(build, len(new_refs) + len(merged_existing))
            running = True

            def load(ids: Iterable[int]) -> dict[int, Customer]:
                # Afterwards the session would begin a transaction that no one ends.
                if not running:
                    raise RuntimeError("load() works only while recrm_customers_imported"
                                       " runs: its batch has been committed")
                return _load_many(session, list(ids))

            try:
                self.crm.hooks.customers_imported(uow, records=imported, load=load)
            finally:
                running = False
        return _Applied(created_ids, merged_rows, conflicts, new_projects)

    def _write(
        self,
        conn: Connection,
        now: Any,
        new_refs: list[int],
        created: list[tuple[Any, ...]],
        state: dict[int, dict[str, Any]],
        new_identities: list[tuple[int, str, str, str]],
        new_links: dict[tuple[int, int], _Link],
        filled_links: dict[int, _Link],
        touched: set[int],
    ) -> dict[int, int]:
        """Write the batch; the id each new customer's reference stands for, in order."""
        created_ids = _insert_customers(conn, now, created)
        real: dict[int, int] = dict(zip(new_refs, created_ids, strict=True))
        if new_identities:
            _insert_in_key_order(
                conn, _IDENTITIES, ("customer_id", "kind", "value", "display"),
                {"created_at": now},
                [(real.get(cid, cid), kind, value, display)
                 for cid, kind, value, display in new_identities],
                key=lambda row: (row[1], row[2]),
            )
        if touched:
            c = _CUSTOMERS.c
            # COALESCE keeps whatever a concurrent writer filled in meanwhile:
            # an import only ever fills empty fields.
            fill = update(_CUSTOMERS).where(c.id == bindparam("b_id")).values(
                {
                    name: func.coalesce(c[name], bindparam(f"b_{name}", type_=c[name].type))
                    for name in _STATE_FIELDS
                }
                | {"updated_at": bindparam("b_updated_at", type_=c.updated_at.type)}
            )
            conn.execute(
                fill,
                [
                    {"b_id": cid, "b_updated_at": now}
                    | {f"b_{name}": state[cid][name] for name in _STATE_FIELDS}
                    for cid in sorted(touched)
                ],
            )
        if new_links:
            _insert_in_key_order(
                conn, _LINKS, ("customer_id", "project_id", "owner_staff", "source"),
                {"stage": "prospect", "first_seen_at": now, "stage_changed_at": now},
                [(real.get(cid, cid), pid, pending.owner_staff, pending.source)
                 for (cid, pid), pending in new_links.items()],
                key=lambda row: (row[0], row[1]),
            )
        if filled_links:
            lc = _LINKS.c
            conn.execute(
                update(_LINKS).where(lc.id == bindparam("b_id")).values(
                    owner_staff=func.coalesce(
                        lc.owner_staff, bindparam("b_owner", type_=lc.owner_staff.type)
                    ),
                    source=func.coalesce(lc.source, bindparam("b_source", type_=lc.source.type)),
                ),
                [
                    {"b_id": lid, "b_owner": held.owner_staff, "b_source": held.source}
                    for lid, held in sorted(filled_links.items())
                ],
            )
        return real

    @staticmethod
    def _project_ids(
        session: Session, conn: Connection, known: dict[str, int], codes: set[str],
        *, create: bool,
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Code -> id for every project of the batch, creating new ones when
        ``create`` (else unknown codes are left out); also the ids this batch
        resolved that are not yet known to be committed."""
        pids = {code: known[code] for code in codes if code in known}
        missing = sorted(codes - pids.keys())
        fresh: dict[str, int] = {}
        for chunk in chunks(missing):
            for code, pid in conn.execute(
                select(_PROJECTS.c.code, _PROJECTS.c.id).where(_PROJECTS.c.code.in_(chunk))
            ):
                fresh[code] = pid
        for code in missing:
            if code not in fresh and create:
                fresh[code] = ensure_project_id(session, code)
        pids.update(fresh)
        return pids, fresh

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


# -- batched reads --------------------------------------------------------------------------


def _customer_state(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        return bulkcopy.customer_state(conn, ids, _STATE_FIELDS)
    return sqlitebatch.customer_state(conn, ids, _STATE_FIELDS)


def _id_cards(conn: Connection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        return bulkcopy.id_cards(conn, ids, ID_CARD)
    # The kind is filtered here, not in SQL: with ``kind = 'id_card'`` in the WHERE
    # clause SQLite (without statistics) searches the UNIQUE (kind, value) index on
    # kind alone and reads every ID card of the table per batch, which made a 1M
    # import ever slower; by customer_id it reads the batch's few identities.
    return {cid: value for cid, kind, value in sqlitebatch.identities_of(conn, ids)
            if kind == ID_CARD}


def _links_of(
    conn: Connection, customer_ids: list[int], project_ids: list[int]
) -> dict[tuple[int, int], _Link]:
    """(customer, project) -> the existing link, for the batch's projects."""
    if not customer_ids or not project_ids:
        return {}
    found = (bulkcopy.links(conn, customer_ids, project_ids)
             if conn.dialect.name == "postgresql"
             else sqlitebatch.links(conn, customer_ids, project_ids))
    return {(cid, pid): _Link(lid, owner, source) for lid, cid, pid, owner, source in found}


def _load_many(session: Session, ids: list[int]) -> dict[int, Customer]:
    """Full models of ``ids`` (survivors for merged-away ids), read in the batch's
    transaction, so they include what the batch wrote."""
    loaded: dict[int, Customer] = {}
    for chunk in chunks(ids):
        loaded.update(load_customers(session, chunk))
    return loaded


# -- bulk writes ------------------------------------------------------------------------------


class _RawInsert:
    """An INSERT compiled once per dialect and run with the driver's ``executemany``.

    SQLAlchemy's own executemany costs several microseconds a row in parameter
    handling; here the few columns that need conversion (dates on SQLite) go through
    the column type's own bind processor and constants are converted once per batch.
    Compiling the statement and looking up its processors every batch cost ~2 % of
    the importing process: that is done once (:meth:`of`).
    """

    def __init__(
        self, dialect: Dialect, table: Table, columns: tuple[str, ...], constants: tuple[str, ...]
    ) -> None:
        names = [*columns, *constants]
        compiled = insert(table).compile(dialect=dialect, column_keys=names)
        self.sql = compiled.string
        processors = {
            name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        }
        self.names = names
        self.constant_processors = [processors[name] for name in constants]
        self.convert: list[tuple[int, Callable[[Any], Any]]] = [
            (i, process) for i, n in enumerate(columns) if (process := processors[n]) is not None
        ]
        positions = list(compiled.positiontup or []) if compiled.positional else []
        order = [names.index(name) for name in positions] if positions else None
        # the statement's parameter order from a row's: one C call a row
        self.order: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = (
            None if order is None or order == list(range(len(names))) else itemgetter(*order))
        self.positional = bool(compiled.positional)

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def of(
        dialect: Dialect, table: Table, columns: tuple[str, ...], constants: tuple[str, ...]
    ) -> _RawInsert:
        return _RawInsert(dialect, table, columns, constants)

    def params(self, rows: Iterable[tuple[Any, ...]], constants: tuple[Any, ...]) -> list[Any]:
        constants = tuple(_processed(process, value)
                          for process, value in zip(self.constant_processors, constants,
                                                    strict=True))
        convert, order = self.convert, self.order
        if convert:
            converted = []
            for row in rows:
                values = list(row)
                for i, process in convert:
                    values[i] = process(values[i])
                converted.append(tuple(values))
            rows = converted
        if not self.positional:
            names = self.names
            return [dict(zip(names, row + constants, strict=True)) for row in rows]
        if order is not None:
            return [order(row + constants) for row in rows]
        return [row + constants for row in rows]

    def execute(self, conn: Connection, rows: list[tuple[Any, ...]], constants: dict[str, Any]
                ) -> None:
        params = self.params(rows, tuple(constants.values()))
        if params:
            conn.exec_driver_sql(self.sql, params)


def _raw_insert(
    conn: Connection, table: Table, columns: tuple[str, ...], constants: dict[str, Any],
    rows: list[tuple[Any, ...]],
) -> None:
    _RawInsert.of(conn.dialect, table, columns, tuple(constants)).execute(conn, rows, constants)


def _insert_in_key_order(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    constants: dict[str, Any],
    rows: list[tuple[Any, ...]],
    key: Callable[[tuple[Any, ...]], Any],
) -> None:
    """Insert ``rows`` (in file order) into a table with a UNIQUE key.

    On PostgreSQL each inserted key is locked in its unique index until commit, so
    two batches inserting shared keys in different orders deadlock. Rows go in
    (by COPY) sorted by ``key`` — one lock order for every importer — yet keep ids in
    file order (a customer's first mobile stays first), because the ids are drawn
    from the table's sequence beforehand and given out in file order. SQLite runs one
    writer at a time and needs neither.
    """
    if conn.dialect.name == "sqlite":
        _raw_insert(conn, table, columns, constants, rows)
        return
    bulkcopy.copy_numbered(conn, table, columns, constants, rows, key=key)


def _processed(process: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if process is None else process(value)


def _insert_customers(conn: Connection, now: Any, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert customers (``_STATE_FIELDS`` values); their new ids, in order."""
    if not rows:
        return []
    cc = _CUSTOMERS.c
    if conn.dialect.name != "sqlite":
        return bulkcopy.copy_numbered(
            conn, _CUSTOMERS, _STATE_FIELDS,
            {"stage": "prospect", "created_at": now, "updated_at": now},
            rows,
        )
    # SQLite gives a new row max(rowid) + 1, and our open write transaction keeps
    # everyone else out, so the batch gets the next len(rows) ids; checked, not assumed.
    before = conn.execute(select(func.coalesce(func.max(cc.id), 0))).scalar_one()
    _raw_insert(conn, _CUSTOMERS, _STATE_FIELDS,
                {"stage": "prospect", "created_at": now, "updated_at": now}, rows)
    last, count = conn.execute(
        select(func.max(cc.id), func.count()).where(cc.id > before)
    ).one()
    if count != len(rows) or last != before + len(rows):
        raise RuntimeError("customer ids of an import batch are not consecutive")
    return list(range(before + 1, last + 1))


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # the errors file does not exist yet
        return False


__all__ = [
    "CONFLICT_FIELD",
    "ImportFileError",
    "ImportInterrupted",
    "ImportProgress",
    "ImportReadError",
    "ImportService",
    "ImportStopped",
    "UnknownColumns",
    "validate_row",
]
