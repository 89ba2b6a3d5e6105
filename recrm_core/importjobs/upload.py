"""Receiving an upload into the job directory: its first bytes are checked before a
byte is stored, its size against ``[api] max_upload_bytes``."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import IO

from ..csvsource import SNIFF_BYTES, ImportFileError, sniff_encoding
from ..errors import RecrmError
from ..tabular import OLE2_MAGIC, ZIP_MAGIC
from .files import _PARTIAL_SUFFIX, _private_file, _unlink


class UploadRefused(ImportFileError):
    """The upload is not a CSV file or an .xlsx workbook (422, nothing kept)."""


class UploadTooLarge(RecrmError):
    """The upload is larger than ``[api] max_upload_bytes`` (413, nothing kept)."""



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

