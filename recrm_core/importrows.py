"""An import's rows, validated and cut into batches: in a worker process for big files.

Validating a row (:func:`validate_row`: every cell through :class:`CustomerIn`'s
parsers) was about 40 % of a SQLite import's CPU time, and it needs nothing from the
database. For a CSV file of :data:`PARALLEL_MIN_BYTES` or more, one worker process
validates the next batches while the importing process resolves and writes the
current one, so the two use both cores of a small machine. The importer sees exactly
what in-process validation gives: the same records and rejections under the same row
numbers, the same batch boundaries, in file order (batches are submitted ahead and
taken back strictly in the order they were read; at most :data:`AHEAD` of them are in
flight, :data:`READ_AHEAD` from a reading worker, so memory does not grow with the
file).

Where the importing process is a fork of a single-threaded one (the CLI), the worker
also reads the file (:func:`_read_in_worker`): it decides the encoding, numbers the
rows and stops at an unreadable one exactly as reading here does, and sends each
batch whole, so the importing process only receives validated batches. Elsewhere
(other threads running: the HTTP API's import jobs) the worker comes from a fork
server, which cannot take over an open reader: there the reader stays in the
importing process and the worker validates what it is sent (:func:`_in_worker`).
``recrm customers import`` forks that worker before it builds the CRM
(:func:`validating_early`), so that the first batches are validated while the importer
starts: the import claims it (:func:`claim_early`) once it has opened the same file
itself, with the same settings, and reports every error of its own as before.
Either way a read error ends the batches with the rows before it
(:attr:`Batch.error`), as in-process reading does, so the importer can commit them and
name the row. Workbooks, small files, ``import_rows`` and platforms without ``fork``
are validated in process: there a worker's start (and pickling the rows to it) would
cost more than it saves.

What a validated row is and how validating makes one is :mod:`recrm_core.importrecords`
(:class:`Record`, :class:`Batch`, :func:`validate_row`, :func:`derived`, importable from
here too); how a batch crosses the pipe, :mod:`recrm_core.importwire`.
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .csvsource import CsvSource, ImportFileError, ImportReadError, open_regular_file
from .errors import RecrmError
from .importrecords import AT, checked_rows, collector_paused
from .importrecords import Batch as Batch
from .importrecords import Identity as Identity
from .importrecords import Record as Record
from .importrecords import as_model as as_model
from .importrecords import derived as derived
from .importrecords import validate_row as validate_row
from .importwire import Packer, Sent, pickled, pickled_error, received, unpack
from .models import RejectedRow
from .tabular import ZIP_MAGIC, TableSource, open_table
from .workerstart import start_method, started

if TYPE_CHECKING:
    from concurrent.futures import Future
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from .keys import Keys

#: a CSV file this large (about 12,000 rows) or larger is validated by a worker process
PARALLEL_MIN_BYTES = 1_000_000
#: batches submitted to the worker ahead of the one being written
AHEAD = 3
#: batches a reading worker (:func:`_read_in_worker`) validates ahead of the one being
#: written, once it knows that ID numbers will not wait for the keys (see
#: :func:`_produce`); a batch of the 200k bench file is ~275 KB pickled. With three,
#: each blocking send kept the worker one batch ahead at most, and the two processes
#: waited for each other in turn: on a shared machine the importer waited 2.0-6.8 s
#: for batches over 200k rows, 0.8-1.8 s with this (bench/README.md, session 8, imp8).
READ_AHEAD = 16

#: what a reader yields: a row's number and values, or the row already rejected
SourceRow = tuple[int, dict[str, Any] | RejectedRow]
#: what the importer asks for the keys ID numbers are hashed and encrypted with: None
#: until it has loaded them (at its first batch holding an ID number)
KeysNow = Callable[[], "Keys | None"]
def _no_keys() -> Keys | None:
    return None


def batches(
    rows: Iterator[SourceRow], size: int, region: str, source: TableSource | None = None,
    keys: KeysNow = _no_keys, early: EarlyWorker | None = None,
) -> Generator[Batch, None, None]:
    """``rows`` validated, in batches of ``size`` rows (the last one may be shorter;
    one ending at a read error carries it). Close the iterator when stopping early:
    that stops the worker.

    ``keys`` says, each time a batch is taken, whether the importer has loaded the
    keys of ID numbers yet; from then on the rows validated next come with their ID
    numbers hashed and encrypted (:class:`Record`). The keys are loaded by the
    importer, when and as it always did (the first batch holding an ID number), and
    handed to the worker only then, in memory: over its pipe to a forked worker, with
    each batch submitted to a fork server's (which never sees them itself).

    ``early`` is a worker :func:`claim_early` gave for ``source``: it reads and
    validates the file in place of ``rows``."""
    if early is not None:
        if _parallel(source):  # forked while single-threaded: usable whatever runs now
            return _read_in_worker(rows, size, region, source, keys, early)
        early.end()
    if _parallel(source):
        if start_method() == "fork":
            return _read_in_worker(rows, size, region, source, keys)
        return _in_worker(rows, size, region, source, keys)
    return _in_process(rows, size, region, source, keys)


def _parallel(source: TableSource | None) -> bool:
    return (
        source is not None
        and source.sheet is None
        and _worth_a_worker(source.total_bytes or 0)
    )


def _worth_a_worker(size: int) -> bool:
    return (
        size >= PARALLEL_MIN_BYTES
        and (os.cpu_count() or 1) > 1
        # fork (or a fork server) is what starts the worker cheaply (start_method);
        # elsewhere spawning one would cost more than small and mid-sized files gain
        and sys.platform == "linux"
    )


#: a file as the early worker and the import each opened it: device, inode, size and
#: modification time (one file, unchanged in between, when they agree)
_Identity = tuple[int, int, int, int]


def _identity(st: os.stat_result) -> _Identity:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@dataclass
class EarlyWorker:
    """A reading worker forked by :func:`validating_early` for one file and settings,
    until the import claims it (:func:`claim_early`)."""

    path: str
    encoding: str | None
    size: int
    region: str
    identity: _Identity
    process: BaseProcess
    conn: Connection

    def end(self) -> None:
        """Stop it at once (unclaimed, it holds nothing anyone waits for)."""
        self.conn.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()


#: the worker :func:`validating_early` forked, until claimed
_early: EarlyWorker | None = None
#: what the early worker answers once it has opened the file: the same file, a CSV
#: file, its header read (accepted; its batches follow), or anything else (declined)
_ACCEPTED = b"="
_DECLINED = b"-"


@contextmanager
def validating_early(
    path: str, encoding: str | None, size: int, region: str
) -> Iterator[None]:
    """Fork the reading worker for a CSV file at ``path`` now, for the import run
    inside this block to claim (:func:`claim_early`) if it imports that file with
    the same ``encoding``, batch ``size`` and ``region``; ended on leaving the block
    if it did not. Only where a worker would be used (:func:`_worth_a_worker`) and
    this process is single-threaded; a workbook is read in process anyway.

    For ``recrm customers import``: the rest of its start before the first batch
    (importing the importer, building the CRM, checking the schema: 0.25 s of the 0.78
    s of CPU it takes) then overlaps validating the first batches."""
    global _early
    early = _fork_early(path, encoding, size, region)
    _early = early
    try:
        yield
    finally:
        _early = None
        if early is not None:
            early.end()  # claimed, the import has ended it already


def _fork_early(path: str, encoding: str | None, size: int, region: str) -> EarlyWorker | None:
    if start_method() != "fork":
        return None
    try:
        # as the import opens it: a FIFO must not block us, nor anything but a
        # regular file be read
        with open_regular_file(path) as fh:
            st = os.fstat(fh.fileno())
            if not _worth_a_worker(st.st_size) or fh.read(len(ZIP_MAGIC[0])) in ZIP_MAGIC:
                return None
    except (ImportFileError, OSError):  # the import's own opening reports it
        return None
    import multiprocessing

    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    identity = _identity(st)
    process = context.Process(
        target=_produce_early, args=(theirs, mine, path, encoding, size, region, identity),
        daemon=True, name="recrm-import-reader")
    process.start()
    theirs.close()
    return EarlyWorker(path, encoding, size, region, identity, process, mine)


def claim_early(
    source: TableSource, encoding: str | None, size: int, region: str
) -> EarlyWorker | None:
    """The worker :func:`validating_early` forked, if it read the file ``source`` is
    (the same path, file and encoding; a CSV file) for the same batch size and
    region; else None (one that does not fit is ended)."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    if not (isinstance(source, CsvSource)
            and (early.path, early.encoding, early.size, early.region)
            == (source.path, encoding, size, region)
            and early.identity == _identity(source.file_stat())):
        early.end()
        return None
    try:
        answer = early.conn.recv_bytes()
    except (EOFError, OSError):
        answer = _DECLINED
    if answer != _ACCEPTED:
        early.end()
        return None
    return early


def _read(
    rows: Iterator[SourceRow], size: int, source: TableSource | None
) -> Iterator[tuple[Batch, list[tuple[int, dict[str, Any]]]]]:
    """Batches as read: the rows the reader rejected already in ``rejected``, the
    others to validate (in file order)."""
    sheet = source if source is not None and source.sheet is not None else None
    while True:
        batch = Batch()
        todo: list[tuple[int, dict[str, Any]]] = []
        # counted in locals, set on the batch once it ends (after a read error too)
        count = row = 0
        try:
            for row, data in rows:
                if not count:
                    batch.first_row = row
                count += 1
                if sheet is not None:
                    batch.sheet_rows[row] = sheet.sheet_row
                if isinstance(data, RejectedRow):
                    batch.rejected.append(data)
                else:
                    todo.append((row, data))
                if count >= size:
                    break
        except ImportReadError as exc:
            batch.error = exc
        if count:
            batch.last_row, batch.rows = row, count
        if source is not None:
            batch.rows_read, batch.bytes_read = source.rows_read, source.bytes_read
        if batch.rows or batch.error is not None:
            yield batch, todo
        if batch.rows < size or batch.error is not None:
            return


def _in_process(
    rows: Iterator[SourceRow], size: int, region: str, source: TableSource | None,
    keys: KeysNow,
) -> Generator[Batch, None, None]:
    for batch, todo in _read(rows, size, source):
        batch.take(checked_rows(todo, region, keys()))
        yield batch


def _in_worker(
    rows: Iterator[SourceRow], size: int, region: str, source: TableSource | None,
    keys: KeysNow,
) -> Generator[Batch, None, None]:
    # imported here: a command that imports no big file does not load them
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("forkserver"),
        initializer=started,
    )
    pending: deque[tuple[Batch, Future[bytes]]] = deque()
    read = _read(rows, size, source)
    try:
        more = True
        while more or pending:
            while more and len(pending) < AHEAD:
                got = next(read, None)
                if got is None:
                    more = False
                    break
                batch, todo = got
                pending.append((batch, pool.submit(_check, todo, region, keys())))
                more = batch.error is None
            if not pending:
                break
            batch, checked = pending.popleft()
            try:
                blob = checked.result()
            except BrokenProcessPool:
                raise RecrmError(
                    "the import's validation worker stopped unexpectedly (out of memory?);"
                    f" rows before row {batch.first_row} were imported"
                ) from None
            unpack(batch, blob)
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check(todo: list[tuple[int, dict[str, Any]]], region: str, keys: Keys | None) -> bytes:
    """In the fork server's worker: validate rows, pickled in a form cheap to send back
    (pickled here, so that the importing process unpickles them in
    :func:`~recrm_core.importwire.unpack`, not in the pool's thread)."""
    return pickled(checked_rows(todo, region, keys))


#: what the importer sends a reading worker: a batch taken (it may read one more),
#: or the keys of ID numbers (this prefix, then the pickled keys)
_TAKEN = b"+"
_KEYS = b"K"


def _read_in_worker(
    rows: Iterator[SourceRow], size: int, region: str, source: TableSource | None,
    keys: KeysNow, early: EarlyWorker | None = None,
) -> Generator[Batch, None, None]:
    """Batches read and validated by a forked worker, which owns ``rows`` (and the
    file under it) from then on: this process must not read them any more. With
    ``early``, that worker reads its own opening of the file and ``rows`` is left
    unread."""
    worker: BaseProcess
    if early is None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        mine, theirs = context.Pipe()
        known = keys()  # a fork inherits what this process holds
        worker = context.Process(
            target=_produce, args=(theirs, mine, rows, size, region, source, known),
            daemon=True, name="recrm-import-reader")
        worker.start()
        theirs.close()
    else:
        mine, worker = early.conn, early.process
        known = None  # forked before any keys: sent below once loaded
    next_row = 1
    try:
        while True:
            if known is None and (known := keys()) is not None:
                # The worker validates the batches after the ones already on their
                # way with the ID numbers hashed and encrypted.
                with suppress(OSError):
                    mine.send_bytes(_KEYS + pickle.dumps(known, pickle.HIGHEST_PROTOCOL))
            try:
                blob = mine.recv_bytes()
            except (EOFError, OSError):
                raise RecrmError(
                    "the import's validation worker stopped unexpectedly (out of memory?);"
                    f" rows before row {next_row} were imported"
                ) from None
            if not blob:  # the end of the file
                return
            # taken: the worker may read one batch further (once it has sent the last
            # one it may have ended: then its next message, or its end, says so)
            with suppress(OSError):
                mine.send_bytes(_TAKEN)
            # handed over without a reference kept here: the importer drops it before
            # turning the collector back on (importing.pauses._gc_paused)
            held = [received(blob)]
            next_row = held[0].last_row + 1
            yield held.pop()
    finally:
        mine.close()  # a worker still reading stops at its next send or wait
        worker.join(10)
        if worker.is_alive():
            worker.terminate()
            worker.join()


def _produce(
    conn: Connection, other_end: Connection, rows: Iterator[SourceRow], size: int,
    region: str, source: TableSource | None, keys: Keys | None,
) -> None:
    """In the forked worker: read and validate batches, sending each (at most
    :data:`READ_AHEAD` not yet taken); an empty message ends the file.

    A thread sends the batches (:class:`_Sender`) so that validating goes on while
    the importer has not taken the last one; the importer takes each when it is
    done with the previous, whichever of the two was faster on that batch. While
    rows holding ID numbers wait for the keys (validated before the importer loaded
    them: it derives their keys itself), at most :data:`AHEAD` batches are ahead,
    so that no more of them are left to the importer than before."""
    started()
    other_end.close()  # else closing it in the importing process would not reach us
    _serve(conn, rows, size, region, source, keys)


def _produce_early(
    conn: Connection, other_end: Connection, path: str, encoding: str | None, size: int,
    region: str, identity: _Identity,
) -> None:
    """In the worker :func:`validating_early` forked: open the file as the import
    will, say whether it is the one expected and a CSV file, then as :func:`_produce`.
    Whatever fails here is left for the import's own opening to report."""
    started()
    other_end.close()
    try:
        source = open_table(path, encoding=encoding)
    except Exception:
        source = None
    try:
        if not isinstance(source, CsvSource) or _identity(source.file_stat()) != identity:
            conn.send_bytes(_DECLINED)
            return
        conn.send_bytes(_ACCEPTED)
    except OSError:  # the import ended meanwhile
        return
    with source:
        _serve(conn, iter(source), size, region, source, None)


def _serve(
    conn: Connection, rows: Iterator[SourceRow], size: int, region: str,
    source: TableSource | None, keys: Keys | None,
) -> None:
    gc.freeze()  # the heap inherited from the importer: never to be walked here
    # Forked while the importer had its collector paused (importing.pauses._gc_paused); here
    # it must run: rejected rows leave cycles (a ValidationError and its traceback),
    # and without it the worker grew to 319 MB over 1M rows.
    gc.enable()
    in_flight = 0
    #: a batch was validated with ID numbers left for want of the keys
    unkeyed = False

    def hear() -> None:
        nonlocal in_flight, keys
        message = conn.recv_bytes()
        if message.startswith(_KEYS):
            keys = cast("Keys", pickle.loads(message[len(_KEYS):]))
        else:
            in_flight -= 1

    sender = _Sender(conn)
    try:
        read = _read(rows, size, source)
        pack = Packer()
        while True:
            while conn.poll():  # what the importer said meanwhile
                hear()
            try:
                got = next(read, None)
            except Exception as exc:  # as reading in the importing process would raise
                sender.put(pickled_error(exc))
                sender.finish()
                return
            if got is None:
                sender.put(b"")
                sender.finish()
                return
            # The collector stays paused until the batch is sent and dropped: turned
            # back on with the batch alive, its first young collection walked the
            # batch's ~20,000 live objects (6 us a row), and the collections set off
            # while packing and pickling it walked them again (0.4 s of the worker's
            # ~6 s at 200k rows). Once it is dropped, the next young collection finds
            # only what validating left in cycles (rejected rows' errors).
            with collector_paused():
                batch, todo = got
                error = batch.error
                checked = checked_rows(todo, region, keys)
                if keys is None and not unkeyed:
                    unkeyed = None in checked[1][_KEYS_AT]
                sent: Sent = (
                    (batch.first_row, batch.last_row, batch.rows, batch.rows_read,
                     batch.bytes_read),
                    [(r.row, r.field, r.reason) for r in batch.rejected],
                    None if error is None
                    else (type(error), error.row, error.reason, error.stopped_at),
                    checked,
                )
                blob = pack(sent)
                del got, batch, todo, sent, checked
            # wait until the importer takes one
            while in_flight >= (AHEAD if unkeyed and keys is None else READ_AHEAD):
                hear()
            sender.put(blob)
            del blob
            in_flight += 1
    except (EOFError, OSError):  # the importer closed its end: stopped early
        return


#: where a record's keys are in its tuple (None: its ID number awaits the keys)
_KEYS_AT = AT["keys"]


class _Sender:
    """The reading worker's sending thread: the batches put to it go to the importer
    in order, each as the importer is ready for it, while the worker validates the
    next ones. It ends at the first failure to
    send (the importer closed its end: stopped early); the worker hears the same
    failure on its next read of the pipe. Only this thread writes to the pipe."""

    def __init__(self, conn: Connection) -> None:
        import queue
        import threading

        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._conn = conn
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="recrm-import-sender")
        self._thread.start()

    def put(self, blob: bytes) -> None:
        self._queue.put(blob)

    def finish(self) -> None:
        """Send what was put, then end."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        get, send = self._queue.get, self._conn.send_bytes
        with suppress(OSError):  # the importer closed its end
            while (blob := get()) is not None:
                send(blob)
