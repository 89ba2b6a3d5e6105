"""The import jobs' part of an erasure: job rows, waiting uploads and kept errors CSVs
that name the person."""

from __future__ import annotations

import codecs
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..csvsource import SNIFF_BYTES, ImportFileError, sniff_encoding
from ..db import utcnow
from ..errors import RecrmError
from ..models import ErasureStep, RejectedRow
from ..tables import ImportJobRow
from ..tabular import open_table
from .files import _PARTIAL_SUFFIX, _private_file, _unlink, job_directory
from .service import ENDED

if TYPE_CHECKING:
    from ..crm import CRM
    from ..privacy import PersonValues

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
    from ..privacy import REDACTED

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
