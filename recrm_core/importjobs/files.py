"""Where an import job's files live: the job directory, its owner-only files (the
upload, the errors CSV) and the rejections an interrupted run already wrote."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..errors import ConfigError
from ..errorsfile import ErrorsFile
from ..models import RejectedRow

if TYPE_CHECKING:
    from ..crm import CRM

#: the job directory's default name, beside recrm.toml (or the database, the key file)
JOB_DIRECTORY = "recrm-jobs"
_UPLOAD_SUFFIX = ".upload"
_ERRORS_SUFFIX = ".errors.csv"
_PARTIAL_SUFFIX = ".part"


def job_directory(crm: CRM) -> Path | None:
    """``[api] job_directory`` (relative to recrm.toml), else ``recrm-jobs`` beside
    recrm.toml, beside the SQLite database, or beside the key file; None when there is
    none of them (PostgreSQL without configuration or key file)."""
    from ..keys import _sqlite_file

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

