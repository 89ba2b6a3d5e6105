"""``/v1/imports``: upload a customer CSV or .xlsx workbook, imported in the background
by the server's worker (``recrm_core.importjobs``) under the CLI's rules; poll the job,
download its errors CSV.

The upload is parsed here as it streams in (multipart/form-data, the file in the
field ``file``), straight into the job directory: never whole in memory, nothing kept
when it is refused, 413 beyond ``[api] max_upload_bytes``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from ..access import check_writer
from ..crm import CRM
from ..importjobs import (
    ImportJob,
    ImportWorker,
    Upload,
    UploadRefused,
    UploadTooLarge,
)
from .auth import Caller, authenticate, crm_of
from .idempotency import IdempotentRoute
from .problems import PROBLEM_RESPONSES, ApiProblem

PREFIX = "/v1/imports"
router = APIRouter(prefix=PREFIX, tags=["imports"], route_class=IdempotentRoute,
                   responses=PROBLEM_RESPONSES)
Crm = Annotated[CRM, Depends(crm_of)]
Authenticated = Annotated[Caller, Depends(authenticate)]
JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="import job id")]
#: the form fields besides the file, and how long each may be
_OPTIONS = {"sheet": 255, "encoding": 32}


class ImportJobCreated(BaseModel):
    """A queued import job: poll ``url``."""

    id: int = Field(description="the job's id")
    url: str = Field(description="where to GET the job")


class ImportJobView(ImportJob):
    """An import job, with where to find it and its errors CSV."""

    url: str = Field(description="where to GET the job")
    errors_url: str | None = Field(
        default=None, description="where to GET the errors CSV (row,field,reason; a "
        "workbook's also sheet_row), once the job started and until it is deleted")


def _view(job: ImportJob) -> ImportJobView:
    return ImportJobView(**job.model_dump(), url=f"{PREFIX}/{job.id}",
                         errors_url=f"{PREFIX}/{job.id}/errors" if job.errors_kept else None)


class _Form:
    """Feeds a multipart body to ``upload`` (the part named ``file``) and keeps the
    short text fields (sheet, encoding)."""

    def __init__(self, boundary: bytes, upload: Upload) -> None:
        self.upload = upload
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.has_file = False
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None
        self._text = bytearray()
        callbacks: Any = {
            "on_part_begin": self._begin, "on_header_field": self._field,
            "on_header_value": self._value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done, "on_part_data": self._data,
            "on_part_end": self._end,
        }
        self.parser = MultipartParser(boundary, callbacks)

    def _begin(self) -> None:
        self._headers, self._part, self._text = {}, None, bytearray()

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == "file":
            if self.has_file:
                raise ApiProblem(422, "send one file in the field 'file'", field="file")
            self.has_file = True
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace").replace("\\", "/").rsplit(
                "/", 1)[-1] or None if raw else None
        self._part = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            self.upload.write(data[start:end])
        elif self._part in _OPTIONS:
            self._text += data[start:end]
            if len(self._text) > _OPTIONS[self._part]:
                raise ApiProblem(422, f"{self._part}: at most {_OPTIONS[self._part]} "
                                 "characters", field=self._part)

    def _end(self) -> None:
        if self._part in _OPTIONS:
            value = self._text.decode("utf-8", "replace").strip()
            if value:
                self.fields[self._part] = value


def _refused(exc: Exception, field: str = "file") -> ApiProblem:
    if isinstance(exc, UploadTooLarge):
        return ApiProblem(413, str(exc), field=field)
    return ApiProblem(422, str(exc), field=field)


@router.post(
    "", response_model=ImportJobCreated, status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "a customer CSV file (UTF-8, GB18030/GBK) or .xlsx "
                     "workbook, as `recrm customers import` takes"},
            "sheet": {"type": "string", "description": "the workbook's sheet (default: "
                      "the first visible one)"},
            "encoding": {"type": "string", "description": "the CSV file's encoding "
                         "(default: from its BOM or content)"}}}}}}},
)
async def imports_create(request: Request, response: Response, crm: Crm,
                         caller: Authenticated) -> ImportJobCreated:
    """Upload a file to import (multipart/form-data, field ``file``; optional ``sheet``,
    ``encoding``): 202 with the job to poll. A file that is not a CSV or a workbook, or
    whose header the import refuses, is 422 and nothing is kept."""
    check_writer(caller.actor)  # 403 before anything is read
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiProblem(415, "send the file as multipart/form-data, in the field 'file'")
    upload = await run_in_threadpool(crm.import_jobs.receive, caller.actor)
    form = _Form(boundary, upload)
    try:
        async for chunk in request.stream():
            try:
                form.parser.write(chunk)
            except (UploadRefused, UploadTooLarge) as exc:
                raise _refused(exc) from None
            except ValueError as exc:  # the multipart parser's own errors
                raise ApiProblem(422, f"the multipart body is malformed ({exc})") from None
        form.parser.finalize()
        if not form.has_file:
            raise ApiProblem(422, "send the file in the multipart field 'file'", field="file")
        job = await run_in_threadpool(
            crm.import_jobs.create, upload, actor=caller.actor, api_key_id=caller.key_id,
            filename=form.filename, sheet=form.fields.get("sheet"),
            encoding=form.fields.get("encoding"))
    except UploadRefused as exc:
        upload.discard()
        raise _refused(exc) from None
    except BaseException:
        upload.discard()
        raise
    worker: ImportWorker | None = getattr(request.app.state, "import_worker", None)
    if worker is not None:
        worker.wake()
    response.headers["Location"] = f"{PREFIX}/{job.id}"
    return ImportJobCreated(id=job.id, url=f"{PREFIX}/{job.id}")


@router.get("", response_model=list[ImportJobView])
def imports_list(crm: Crm, caller: Authenticated,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[ImportJobView]:
    """The newest jobs of this key (an admin key: everyone's)."""
    return [_view(job) for job in crm.import_jobs.list(
        actor=caller.actor, api_key_id=caller.key_id, limit=limit)]


@router.get("/{job_id}", response_model=ImportJobView)
def imports_get(job_id: JobId, crm: Crm, caller: Authenticated) -> ImportJobView:
    """A job: status, progress (rows read, committed, rejected), the summary once done,
    the link to its errors CSV. 404 for a job another key uploaded (unless admin)."""
    return _view(crm.import_jobs.get(job_id, actor=caller.actor, api_key_id=caller.key_id))


@router.get("/{job_id}/errors", response_class=FileResponse,
            responses={200: {"content": {"text/csv": {}},
                             "description": "row,field,reason[,sheet_row], UTF-8 with BOM"}})
def imports_errors(job_id: JobId, crm: Crm, caller: Authenticated) -> FileResponse:
    """The job's errors CSV: one line per rejected row, as ``--errors`` writes it."""
    path = crm.import_jobs.errors_file(job_id, actor=caller.actor, api_key_id=caller.key_id)
    return FileResponse(path, media_type="text/csv; charset=utf-8",
                        filename=f"import-{job_id}-errors.csv")


def install_worker(app: FastAPI, crm: CRM,
                   make: Callable[[CRM], ImportWorker] = ImportWorker) -> None:
    """Run import jobs in a thread of this server process while the app runs (its
    lifespan); on shutdown a running job pauses after its batch, to be resumed."""
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: FastAPI) -> AsyncIterator[Any]:
        worker = make(crm)
        worker.start()
        app.state.import_worker = worker
        try:
            async with previous(target) as state:
                yield state
        finally:
            app.state.import_worker = None
            await run_in_threadpool(worker.stop)

    app.router.lifespan_context = lifespan
