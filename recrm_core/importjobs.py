"""Import jobs: a customer file uploaded to the HTTP API, imported in the background
under exactly the CLI's rules (``crm.importer.import_file``), its state in the
database (``import_jobs``) so that a server restart loses nothing.

A job is ``queued`` when its upload is stored, ``running`` while a worker holds its
lease (renewed every few seconds), then ``done`` or ``failed``. A worker claims a job
with one conditional UPDATE, so two server processes never run one job at once; a job
left ``running`` by a crashed server (its lease expired) is claimed again and resumed
after the rows its committed batches covered — idempotently, like running the CLI's
import again. Files live in the job directory (``[api] job_directory``): the upload
(owner-only, under a random name) until the job ends, the errors CSV
``api.job_retention_days`` after it, when :meth:`ImportJobService.sweep` deletes the
job. An erasure removes the person from both (:func:`erase_person`).

FastAPI stays out of this module: the API's routes (``recrm_core.api.imports``) call it.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from .access import check_writer
from .csvsource import SNIFF_BYTES, ImportFileError, sniff_encoding
from .db import utcnow
from .errors import ConfigError, NotFound, RecrmError
from .errorsfile import ErrorsFile
from .models import Actor, ErasureStep, ImportResult, RejectedRow, _Out
from .tables import ImportJobRow
from .tabular import OLE2_MAGIC, ZIP_MAGIC, open_table

if TYPE_CHECKING:
    from .crm import CRM
    from .importing import ImportProgress
    from .privacy import PersonValues

_log = logging.getLogger("recrm.importjobs")

#: the job directory's default name, beside recrm.toml (or the database, the key file)
JOB_DIRECTORY = "recrm-jobs"
#: how long a claim holds without a heartbeat; a crashed worker's job waits this long
LEASE = dt.timedelta(seconds=60)
HEARTBEAT_SECONDS = 10.0
#: how often an idle worker looks for jobs queued by other server processes
POLL_SECONDS = 2.0
SWEEP_SECONDS = 3600.0
#: claims of one job before it is failed (a job that crashes its worker every time)
MAX_ATTEMPTS = 5
ENDED = ("done", "failed")
_UPLOAD_SUFFIX = ".upload"
_ERRORS_SUFFIX = ".errors.csv"
_PARTIAL_SUFFIX = ".part"


class ImportJob(_Out):
    """An import job: its state, progress and, once done, its summary."""

    id: int = Field(description="the job's id")
    status: str = Field(description="queued, running, done or failed")
    filename: str | None = Field(default=None, description="the uploaded file's name")
    format: str = Field(description="csv or xlsx (read from the file's bytes)")
    created_by: str = Field(description="the staff member whose key uploaded it")
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    upload_bytes: int = Field(description="the uploaded file's size")
    bytes_read: int = Field(description="bytes of the file read so far")
    rows_read: int = Field(description="data rows read so far (numbered like rejected rows)")
    rows_committed: int = Field(description="rows whose batch is committed: imported or "
                                "rejected")
    rejected: int = Field(description="rows rejected so far (see the errors CSV)")
    summary: ImportResult | None = Field(
        default=None, description="what the import did (the CLI's --json summary), once done")
    error: str | None = Field(default=None, description="why it failed, when it did")
    attempts: int = Field(description="how often a worker started it (more than 1: resumed)")
    errors_kept: bool = Field(description="whether its errors CSV can be downloaded")


class UploadRefused(ImportFileError):
    """The upload is not a CSV file or an .xlsx workbook (422, nothing kept)."""


class UploadTooLarge(RecrmError):
    """The upload is larger than ``[api] max_upload_bytes`` (413, nothing kept)."""


class LeaseLost(RecrmError):
    """The worker no longer holds the job (another took it over, an erasure cancelled
    it, or the server is stopping): the import stops after its committed batch."""


# -- where files live ---------------------------------------------------------------------


def job_directory(crm: CRM) -> Path | None:
    """``[api] job_directory`` (relative to recrm.toml), else ``recrm-jobs`` beside
    recrm.toml, beside the SQLite database, or beside the key file; None when there is
    none of them (PostgreSQL without configuration or key file)."""
    from .keys import _sqlite_file

    setting = crm.config.api.job_directory
    if setting:
        path = Path(setting).expanduser()
        if not path.is_absolute() and crm.config_file is not None:
            path = crm.config_file.parent / path
        return path
    if crm.config_file is not None:
        return crm.config_file.parent / JOB_DIRECTORY
    database = _sqlite_file(crm.config.database_url)
    if database:
        return Path(database).absolute().parent / JOB_DIRECTORY
    key_file = crm.key_file
    if key_file is not None:
        return key_file.absolute().parent / JOB_DIRECTORY
    return None


def _ensure_directory(crm: CRM) -> Path:
    path = job_directory(crm)
    if path is None:
        raise ConfigError("import jobs need a place for their files: set [api] job_directory")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the job directory {str(path)!r}: "
                          f"{exc.strerror}") from None
    return path


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _private_file(path: Path) -> IO[bytes]:
    """A new file only its owner may read, from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    return os.fdopen(fd, "wb")


# -- receiving an upload ---------------------------------------------------------------------


def check_upload_head(head: bytes, complete: bool) -> str:
    """``"xlsx"`` or ``"csv"`` from a file's first bytes, or UploadRefused: the same
    tests the CLI's :func:`~recrm_core.tabular.open_table` makes, before anything is
    stored (an empty file, an .xls or WPS workbook, binary data, UTF-16)."""
    if not head:
        raise UploadRefused("the file is empty")
    if head.startswith(OLE2_MAGIC):
        raise UploadRefused("the file is an Excel 97-2003 (.xls) or WPS (.et) workbook, or a "
                            "password-protected one; save it as .xlsx (or CSV) and upload that")
    if head.startswith(ZIP_MAGIC):
        return "xlsx"
    try:
        guess = sniff_encoding(head, complete)
    except ImportFileError as exc:  # UTF-16
        raise UploadRefused(str(exc)) from None
    if b"\0" in head:
        raise UploadRefused("the file is neither a CSV file nor an .xlsx workbook")
    if guess.undecodable:
        raise UploadRefused("the file is neither a CSV file nor an .xlsx workbook (it is not "
                            "text in UTF-8 or GB18030)")
    return "csv"


class Upload:
    """An upload being received into the job directory: ``write`` chunks, then
    :meth:`ImportJobService.create` (or :meth:`discard`). The first bytes are checked
    (:func:`check_upload_head`) before a byte is written to disk."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self.size = 0
        self.name = secrets.token_hex(16)
        self.path = directory / f"{self.name}{_PARTIAL_SUFFIX}"
        self.format: str | None = None
        self._head = bytearray()
        self._fh: IO[bytes] | None = None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.discard()
            raise UploadTooLarge(f"the file is larger than {self.limit} bytes "
                                 "([api] max_upload_bytes)")
        if self._fh is None:
            self._head += data
            if len(self._head) < SNIFF_BYTES:
                return
            self._open(complete=False)
            return
        self._fh.write(data)

    def _open(self, complete: bool) -> None:
        head = bytes(self._head)
        self.format = check_upload_head(head[:SNIFF_BYTES], complete)
        self._fh = _private_file(self.path)
        self._fh.write(head)
        self._head.clear()

    def finish(self) -> None:
        """The body ended: check what was not checked yet, close the file."""
        if self._fh is None:
            self._open(complete=True)
        assert self._fh is not None
        self._fh.close()

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
        _unlink(self.path)


# -- the service ---------------------------------------------------------------------------------


def _actor_of(row: ImportJobRow) -> Actor:
    return Actor(staff_id=row.staff_id, role=row.role, channel="api")


def _model(row: ImportJobRow) -> ImportJob:
    summary = None
    if row.status == "done":
        summary = ImportResult(rows=row.rows_committed, created=row.created, merged=row.merged,
                               rejected=row.rejected,
                               suspected_duplicates=row.suspected_duplicates)
    return ImportJob(
        id=row.id, status=row.status, filename=row.filename, format=row.format,
        created_by=row.staff_id, created_at=row.created_at, started_at=row.started_at,
        finished_at=row.finished_at, upload_bytes=row.upload_bytes, bytes_read=row.bytes_read,
        rows_read=row.rows_read, rows_committed=row.rows_committed, rejected=row.rejected,
        summary=summary, error=row.error, attempts=row.attempts,
        errors_kept=row.errors_file is not None)


def _shown(text: str, path: Path, filename: str | None) -> str:
    """A message of the importer without the server's path in it."""
    name = filename or "the uploaded file"
    return text.replace(repr(str(path)), repr(name)).replace(str(path), name)


class ImportJobService:
    """``crm.import_jobs``: import jobs of the HTTP API (docs/api.md, "Import jobs")."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    @property
    def directory(self) -> Path | None:
        return job_directory(self.crm)

    # -- uploading and reading ------------------------------------------------------------
    def receive(self, actor: Actor | None) -> Upload:
        """A new upload of ``actor`` (Forbidden for a role that changes nothing)."""
        check_writer(actor)
        return Upload(_ensure_directory(self.crm), self.crm.config.api.max_upload_bytes)

    def create(self, upload: Upload, *, actor: Actor, api_key_id: int | None,
               filename: str | None = None, sheet: str | None = None,
               encoding: str | None = None) -> ImportJob:
        """Queue the received ``upload``: its header is read first, under the CLI's rules
        (an unknown column, no header, a missing sheet: UploadRefused, nothing kept)."""
        check_writer(actor)
        try:
            upload.finish()
            with open_table(upload.path, encoding=encoding, sheet=sheet):
                pass
        except ImportFileError as exc:
            upload.discard()
            raise UploadRefused(_shown(str(exc), upload.path, filename)) from None
        except BaseException:
            upload.discard()
            raise
        stored = upload.directory / f"{upload.name}{_UPLOAD_SUFFIX}"
        try:
            os.replace(upload.path, stored)
            with self.crm.unit_of_work(actor) as uow:
                row = ImportJobRow(
                    status="queued", api_key_id=api_key_id, staff_id=actor.staff_id,
                    role=actor.role, filename=(filename or None) and filename[:255],
                    format=upload.format or "csv", sheet=sheet, encoding=encoding,
                    upload_file=stored.name, upload_bytes=upload.size, created_at=utcnow())
                uow.session.add(row)
                uow.session.flush()
                job = _model(row)
        except BaseException:
            _unlink(stored)
            raise
        return job

    def _visible(self, row: ImportJobRow | None, actor: Actor | None,
                 api_key_id: int | None) -> ImportJobRow:
        if row is None or not (actor is None or actor.role == "admin"
                               or (api_key_id is not None and row.api_key_id == api_key_id)):
            raise NotFound("no such import job (a job is seen by the key that uploaded it "
                           "and by admins)")
        return row

    def get(self, job_id: int, *, actor: Actor | None = None,
            api_key_id: int | None = None) -> ImportJob:
        """The job (NotFound unless ``api_key_id`` uploaded it or ``actor`` is an admin)."""
        with self.crm.unit_of_work(readonly=True) as uow:
            return _model(self._visible(uow.session.get(ImportJobRow, job_id), actor,
                                        api_key_id))

    def list(self, *, actor: Actor | None = None, api_key_id: int | None = None,
             limit: int = 100) -> list[ImportJob]:
        """The newest jobs the caller may see (an admin: everyone's)."""
        query = select(ImportJobRow).order_by(ImportJobRow.id.desc()).limit(limit)
        if actor is not None and actor.role != "admin":
            query = query.where(ImportJobRow.api_key_id == api_key_id)
        with self.crm.unit_of_work(readonly=True) as uow:
            return [_model(row) for row in uow.session.scalars(query)]

    def errors_file(self, job_id: int, *, actor: Actor | None = None,
                    api_key_id: int | None = None) -> Path:
        """The job's errors CSV (NotFound before the job started, after retention)."""
        with self.crm.unit_of_work(readonly=True) as uow:
            row = self._visible(uow.session.get(ImportJobRow, job_id), actor, api_key_id)
            name = row.errors_file
        directory = self.directory
        if name is None or directory is None or not (directory / name).is_file():
            raise NotFound(f"import job {job_id} has no errors CSV (not started yet, or "
                           "deleted after [api] job_retention_days)")
        return directory / name

    # -- running ------------------------------------------------------------------------------
    def claim(self, owner: str, now: dt.datetime | None = None) -> int | None:
        """Take the oldest queued job, or a running one whose lease expired; its id, or
        None. The UPDATE's own condition decides between two claimants."""
        at = now or utcnow()
        claimable = or_(ImportJobRow.status == "queued",
                        and_(ImportJobRow.status == "running", ImportJobRow.lease_until < at))
        with self.crm.unit_of_work() as uow:
            session = uow.session
            for job_id in session.scalars(select(ImportJobRow.id).where(claimable)
                                          .order_by(ImportJobRow.id).limit(10)).all():
                taken = session.execute(
                    update(ImportJobRow).where(ImportJobRow.id == job_id, claimable).values(
                        status="running", lease_owner=owner, lease_until=at + LEASE,
                        attempts=ImportJobRow.attempts + 1,
                        started_at=func.coalesce(ImportJobRow.started_at, at)))
                if getattr(taken, "rowcount", 0) == 1:
                    return int(job_id)
        return None

    def run_pending(self, owner: str | None = None,
                    stopping: threading.Event | None = None) -> int:
        """Run claimable jobs until none is left (or ``stopping`` is set); how many ran."""
        owner = owner or worker_name()
        ran = 0
        while stopping is None or not stopping.is_set():
            job_id = self.claim(owner)
            if job_id is None:
                break
            self.run(job_id, owner, stopping)
            ran += 1
        return ran

    def _renew(self, job_id: int, owner: str, **values: Any) -> bool:
        with self.crm.unit_of_work() as uow:
            done = uow.session.execute(
                update(ImportJobRow).where(ImportJobRow.id == job_id,
                                           ImportJobRow.status == "running",
                                           ImportJobRow.lease_owner == owner)
                .values({"lease_until": utcnow() + LEASE, **values}))
            return getattr(done, "rowcount", 0) == 1

    def run(self, job_id: int, owner: str, stopping: threading.Event | None = None) -> None:
        """Run (or resume) a job claimed by ``owner``, to its end or until the lease is
        lost or ``stopping`` is set (the lease is then released, so the next worker
        resumes it at once)."""
        with self.crm.unit_of_work(readonly=True) as uow:
            row = uow.session.get(ImportJobRow, job_id)
            if row is None or row.lease_owner != owner:
                return
            uow.session.expunge(row)
        directory = _ensure_directory(self.crm)
        if row.attempts > MAX_ATTEMPTS:
            self._end(row, owner, "failed", error=f"gave up after {MAX_ATTEMPTS} attempts "
                      "(the server stopped during each); upload the file again")
            return
        if row.upload_file is None or not (directory / row.upload_file).is_file():
            self._end(row, owner, "failed", error="the uploaded file is gone")
            return
        upload = directory / row.upload_file
        errors_name = row.errors_file or f"{secrets.token_hex(16)}{_ERRORS_SUFFIX}"
        errors_path = directory / errors_name
        kept = _kept_rejections(errors_path, row.rows_committed) if row.errors_file else []
        if row.errors_file is None and not self._renew(job_id, owner, errors_file=errors_name):
            return
        base = {"rows_committed": row.rows_committed, "created": row.created,
                "merged": row.merged, "rejected": row.rejected}
        lost = threading.Event()
        beat_stop = threading.Event()

        def heartbeat() -> None:
            while not beat_stop.wait(HEARTBEAT_SECONDS):
                try:
                    if not self._renew(job_id, owner):
                        lost.set()
                        return
                except Exception:  # the database is away a moment: the next beat tries
                    _log.warning("import job %s: heartbeat failed", job_id, exc_info=True)

        def progress(p: ImportProgress) -> None:
            if not self._renew(job_id, owner, rows_read=p.rows_read, bytes_read=p.bytes_read,
                               rows_committed=base["rows_committed"] + p.rows,
                               created=base["created"] + p.created,
                               merged=base["merged"] + p.merged,
                               rejected=base["rejected"] + p.rejected):
                lost.set()
            if lost.is_set():
                raise LeaseLost(f"import job {job_id} was taken over or cancelled")
            if stopping is not None and stopping.is_set():
                raise LeaseLost(f"import job {job_id} paused: the server is stopping")

        beat = threading.Thread(target=heartbeat, name=f"recrm-import-{job_id}-lease",
                                daemon=True)
        beat.start()
        try:
            with _errors_file(errors_path, row.format == "xlsx") as errors:
                for rejected in kept:
                    errors.write(rejected)
                result = self.crm.importer.import_file(
                    upload, encoding=row.encoding, sheet=row.sheet, on_reject=errors.write,
                    progress=progress, actor=_actor_of(row), start_after=row.rows_committed)
        except LeaseLost:
            if stopping is not None and stopping.is_set() and not lost.is_set():
                self._renew(job_id, owner, lease_until=utcnow())  # resume at once elsewhere
            return
        except RecrmError as exc:
            committed = getattr(getattr(exc, "result", None), "rows", None)
            _log.info("import job %s failed: %s", job_id, exc)
            self._end(row, owner, "failed", error=_shown(str(exc), upload, row.filename),
                      committed=None if committed is None else base["rows_committed"]
                      + committed)
            return
        except Exception as exc:
            _log.exception("import job %s failed", job_id)
            from .errors import database_failure

            self._end(row, owner, "failed", error="internal error "
                      f"({database_failure(exc) or type(exc).__name__}); upload the file again")
            return
        finally:
            beat_stop.set()
            beat.join()
        self._end(row, owner, "done", result=result, base=base)

    def _end(self, row: ImportJobRow, owner: str, status: str, *, error: str | None = None,
             result: ImportResult | None = None, base: dict[str, int] | None = None,
             committed: int | None = None) -> None:
        """Mark the job ended, then delete its upload (the row names it until then, so
        a crash in between leaves the sweep something to delete)."""
        values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow(),
                                  "lease_owner": None, "lease_until": None}
        if result is not None and base is not None:
            values.update(rows_committed=base["rows_committed"] + result.rows,
                          created=base["created"] + result.created,
                          merged=base["merged"] + result.merged,
                          rejected=base["rejected"] + result.rejected,
                          suspected_duplicates=result.suspected_duplicates)
        if committed is not None:
            values["rows_committed"] = committed
        with self.crm.unit_of_work() as uow:
            ended = uow.session.execute(
                update(ImportJobRow).where(ImportJobRow.id == row.id,
                                           ImportJobRow.lease_owner == owner)
                .values(**values))
            if getattr(ended, "rowcount", 0) != 1:
                return
        self._delete_upload(row.id)

    def _delete_upload(self, job_id: int) -> None:
        directory = self.directory
        with self.crm.unit_of_work() as uow:
            name = uow.session.scalar(select(ImportJobRow.upload_file)
                                      .where(ImportJobRow.id == job_id))
            if name is None:
                return
            if directory is not None:
                _unlink(directory / name)
            uow.session.execute(update(ImportJobRow).where(ImportJobRow.id == job_id)
                                .values(upload_file=None))

    # -- retention -----------------------------------------------------------------------
    def sweep(self, now: dt.datetime | None = None) -> int:
        """Delete jobs (row and errors CSV) ended ``api.job_retention_days`` ago, the
        uploads of ended jobs a crash left behind, and partial uploads a day old; how
        many jobs were deleted."""
        at = now or utcnow()
        cutoff = at - dt.timedelta(days=self.crm.config.api.job_retention_days)
        directory = self.directory
        with self.crm.unit_of_work(readonly=True) as uow:
            leftovers = list(uow.session.scalars(select(ImportJobRow.id).where(
                ImportJobRow.status.in_(ENDED), ImportJobRow.upload_file.is_not(None))))
        for job_id in leftovers:
            self._delete_upload(job_id)
        deleted = 0
        with self.crm.unit_of_work() as uow:
            old = uow.session.execute(select(ImportJobRow.id, ImportJobRow.errors_file).where(
                ImportJobRow.status.in_(ENDED), ImportJobRow.finished_at < cutoff)).all()
            for job_id, errors_name in old:
                if errors_name and directory is not None:
                    _unlink(directory / errors_name)
                deleted += getattr(uow.session.execute(
                    delete(ImportJobRow).where(ImportJobRow.id == job_id)), "rowcount", 0)
        if directory is not None and directory.is_dir():
            for partial in directory.glob(f"*{_PARTIAL_SUFFIX}"):
                try:
                    if partial.stat().st_mtime < time.time() - 86400:
                        _unlink(partial)
                except OSError:
                    pass
        return deleted


def worker_name() -> str:
    """Who holds a lease: this host and process, and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


class ImportWorker:
    """The server's background thread: runs queued jobs, resumes those a crashed server
    left, sweeps old ones. ``wake()`` after queuing one; ``stop()`` pauses a running
    job after its current batch (it is resumed by the next worker)."""

    def __init__(self, crm: CRM, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.crm = crm
        self.poll_seconds = poll_seconds
        self.name = worker_name()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="recrm-import-jobs",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        jobs = ImportJobService(self.crm)
        swept: float | None = None  # at start, then hourly
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if swept is None or time.monotonic() - swept > SWEEP_SECONDS:
                    jobs.sweep()
                    swept = time.monotonic()
                jobs.run_pending(self.name, self._stopping)
            except Exception:  # the database is away: try again at the next poll
                _log.exception("import jobs: worker round failed")
            self._wake.wait(self.poll_seconds)


# -- the errors CSV ----------------------------------------------------------------------------


def _errors_file(path: Path, sheet_rows: bool) -> ErrorsFile:
    """The job's errors CSV, opened afresh (owner-only): rejections an interrupted run
    committed are written back first by the caller."""
    if not path.exists():
        _private_file(path).close()
    return ErrorsFile(path, sheet_rows=sheet_rows)


def _kept_rejections(path: Path, committed: int) -> list[RejectedRow]:
    """The rejections of rows up to ``committed`` an interrupted run wrote; lines of a
    batch whose commit was not recorded are written again by the resumed run."""
    kept: list[RejectedRow] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for line in csv.DictReader(fh):
                row = int(line.get("row") or 0)
                if 0 < row <= committed:
                    sheet_row = line.get("sheet_row") or None
                    kept.append(RejectedRow(row=row, field=line.get("field") or "",
                                            reason=line.get("reason") or "",
                                            sheet_row=int(sheet_row) if sheet_row else None))
    except (OSError, ValueError, csv.Error):
        return []
    return kept


# -- erasure --------------------------------------------------------------------------------------

#: how a rejection names customers: "customer 3", "different customers (3 and 7)"
_CUSTOMER_IDS = re.compile(r"customers?\s*\(?(\d+(?:\s*(?:,|and)\s*\d+)*)")


def _names_person(text: str, needles: PersonValues, ids: list[int]) -> bool:
    if needles.named_in(text, name=True):
        return True
    return any(int(n) in ids for match in _CUSTOMER_IDS.finditer(text)
               for n in re.findall(r"\d+", match.group(1)))


def _csv_lines(path: Path) -> Iterator[str]:
    """The text lines of a CSV upload, decoded as the import would (UTF-8, else GB18030)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
        fh.seek(0)
        try:
            guess = sniff_encoding(head, complete=len(head) < SNIFF_BYTES)
        except ImportFileError:
            return
        codec = "utf-8" if guess.encoding in (None, "utf-8-sig") else guess.encoding
        decoder = codecs.lookup(codec).name
        for raw in fh:
            yield raw.decode(decoder, "replace")


def _upload_names(path: Path, row: ImportJobRow, needles: PersonValues,
                  ids: list[int]) -> bool:
    """Whether a waiting upload holds a row of the person."""
    try:
        if row.format == "xlsx":
            with open_table(path, sheet=row.sheet) as source:
                for _, values in source:
                    if not isinstance(values, RejectedRow) and _names_person(
                            " | ".join(str(v) for v in values.values()), needles, ids):
                        return True
            return False
        return any(_names_person(line, needles, ids) for line in _csv_lines(path))
    except (OSError, RecrmError):
        return False


def erase_person(crm: CRM, session: Session, needles: PersonValues, ids: list[int],
                 ) -> tuple[ErasureStep, Callable[[], None]]:
    """The import jobs' part of an erasure, in its transaction: a job's file name or
    error naming the person is redacted; a queued or running job whose upload (or errors
    CSV) holds them is cancelled — the import would bring them back — and its files
    deleted; kept errors CSVs lose the lines naming them (by value, or by customer id).
    The files change only when the returned function is called, once the erasure's scan
    passed (not in a dry run)."""
    from .privacy import REDACTED

    directory = job_directory(crm)
    redacted = cancelled = 0
    rewrites: dict[Path, list[str]] = {}
    doomed: list[Path] = []
    lines_gone = 0
    for row in session.scalars(select(ImportJobRow).order_by(ImportJobRow.id)):
        if needles.named_in(row.filename, name=True) or needles.named_in(row.error, name=True):
            row.filename = REDACTED if needles.named_in(row.filename, name=True) else row.filename
            row.error = REDACTED if needles.named_in(row.error, name=True) else row.error
            redacted += 1
        if directory is None:
            continue
        errors = directory / row.errors_file if row.errors_file else None
        upload = directory / row.upload_file if row.upload_file else None
        if row.status not in ENDED:
            named = (upload is not None and upload.is_file()
                     and _upload_names(upload, row, needles, ids))
            if not named and errors is not None and errors.is_file():
                with open(errors, encoding="utf-8-sig", errors="replace") as fh:
                    named = any(_names_person(line, needles, ids) for line in fh)
            if named:
                doomed.extend(p for p in (upload, errors) if p is not None)
                row.status, row.finished_at = "failed", utcnow()
                row.lease_owner = row.lease_until = None
                row.upload_file = row.errors_file = None
                row.error = ("cancelled: the file holds a person whose data was erased; "
                             "upload it again without them")
                cancelled += 1
            continue
        if errors is None or not errors.is_file():
            continue
        with open(errors, encoding="utf-8-sig", newline="") as fh:
            lines = fh.read().splitlines(keepends=True)
        keep = [line for i, line in enumerate(lines)
                if i == 0 or not _names_person(line, needles, ids)]
        if len(keep) != len(lines):
            rewrites[errors] = keep
            lines_gone += len(lines) - len(keep)
    session.flush()

    def apply() -> None:
        for path in doomed:
            _unlink(path)
        for path, keep in rewrites.items():
            fresh = path.with_name(f"{path.name}.{secrets.token_hex(4)}{_PARTIAL_SUFFIX}")
            with _private_file(fresh) as fh:
                fh.write("".join(keep).encode("utf-8-sig"))
            os.replace(fresh, path)

    basis = None
    if redacted or lines_gone or cancelled:
        basis = (f"jobs kept: {cancelled} waiting import(s) of a file holding the person "
                 f"cancelled and their files deleted, {lines_gone} line(s) naming them deleted "
                 f"from errors CSVs, {redacted} file name(s) or error(s) redacted")
    return ErasureStep(table="import_jobs", anonymised=redacted + cancelled + len(rewrites),
                       basis=basis), apply


__all__ = [
    "ImportJob",
    "ImportJobService",
    "ImportWorker",
    "LeaseLost",
    "Upload",
    "UploadRefused",
    "UploadTooLarge",
    "check_upload_head",
    "erase_person",
    "job_directory",
]
