"""The import jobs' service (``crm.import_jobs``): a job queued from a received upload,
read by the key that uploaded it, claimed under a lease, run by the CLI's importer, ended,
and swept after ``api.job_retention_days``."""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import and_, delete, func, or_, select, update

from ..access import check_writer
from ..csvsource import ImportFileError
from ..db import utcnow
from ..errors import NotFound, RecrmError
from ..models import Actor, ImportResult, _Out
from ..tables import ImportJobRow
from ..tabular import open_table
from .files import (
    _ERRORS_SUFFIX,
    _PARTIAL_SUFFIX,
    _UPLOAD_SUFFIX,
    _ensure_directory,
    _errors_file,
    _kept_rejections,
    _unlink,
    job_directory,
)
from .upload import Upload, UploadRefused

if TYPE_CHECKING:
    from ..crm import CRM
    from ..importing import ImportProgress

_log = logging.getLogger("recrm.importjobs")

#: how long a claim holds without a heartbeat; a crashed worker's job waits this long
LEASE = dt.timedelta(seconds=60)
HEARTBEAT_SECONDS = 10.0
#: claims of one job before it is failed (a job that crashes its worker every time)
MAX_ATTEMPTS = 5
ENDED = ("done", "failed")


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


class LeaseLost(RecrmError):
    """The worker no longer holds the job (another took it over, an erasure cancelled
    it, or the server is stopping): the import stops after its committed batch."""


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
            from ..errors import database_failure

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

