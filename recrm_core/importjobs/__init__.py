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

FastAPI stays out of this package: the API's routes (``recrm_core.api.imports``) call it.
The modules, one a concept: ``files`` (the job directory and its files), ``upload``
(receiving a file), ``service`` (the jobs and their leases), ``worker`` (the server's
thread), ``erasure``.
"""

from .erasure import erase_person
from .files import JOB_DIRECTORY as JOB_DIRECTORY
from .files import job_directory
from .service import ENDED as ENDED
from .service import HEARTBEAT_SECONDS as HEARTBEAT_SECONDS
from .service import LEASE as LEASE
from .service import MAX_ATTEMPTS as MAX_ATTEMPTS
from .service import ImportJob, ImportJobService, LeaseLost
from .service import worker_name as worker_name
from .upload import Upload, UploadRefused, UploadTooLarge, check_upload_head
from .worker import POLL_SECONDS as POLL_SECONDS
from .worker import SWEEP_SECONDS as SWEEP_SECONDS
from .worker import ImportWorker

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
