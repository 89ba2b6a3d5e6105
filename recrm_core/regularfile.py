"""Opening a file that must be a regular one (an import, a configuration, a segment),
and the rule for a path written to (an export, an errors file).

A path may name a directory, a FIFO or a device, or link to one: /dev/zero never
ends and a FIFO blocks until someone writes, so whatever reads a file a person named
refuses anything else first, in one line. Whatever writes one refuses it too: opening
a FIFO blocks until someone reads, and renaming a new file onto /dev/null (as root)
would replace it for every program on the machine. Nor does an output replace the
CRM's own data: a report's ``--csv crm.db`` or an errors file named ``recrm.key`` (a
slip of tab completion) would destroy the database or the keys without which its ID
numbers cannot be read, so an existing SQLite database (or its write-ahead log) or
recrm key file is refused by its first bytes, whatever its name. So are the files
SQLite keeps beside a database (``crm.db-wal``, ``-shm``, ``-journal``), by their names:
they are empty or absent until SQLite writes them, and an errors file written into the
open log or its index while the import commits corrupts the database or loses rows.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import IO

_NOT_FILES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path: str, refuse: Callable[[str], Exception]) -> IO[bytes]:
    """Open ``path`` for reading, or raise ``refuse(message)`` unless it is (or links
    to) a regular file; the message reads ``cannot read 'PATH': why``."""

    def refuse_unless_regular(mode: int) -> None:
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _NOT_FILES if test(mode)), "not a regular file")
            raise refuse(f"cannot read {path!r}: it is {kind}, not a file")

    try:
        refuse_unless_regular(os.stat(path).st_mode)
        # O_NONBLOCK: should a FIFO replace the file after the look, opening it must
        # not wait for a writer; fstat below then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise refuse(f"cannot read {path!r}: {exc.strerror}") from None
    except ValueError:  # a NUL in the path
        raise refuse(f"cannot read {path!r}: not a valid path") from None
    try:
        refuse_unless_regular(os.fstat(fd).st_mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


#: the first bytes of what an output never replaces, and what it is
_DATA_FILES = (
    (b"SQLite format 3\x00", "is a SQLite database"),
    (b"\x37\x7f\x06\x82", "is a SQLite write-ahead log"),
    (b"\x37\x7f\x06\x83", "is a SQLite write-ahead log"),
    (b'{\n  "format": "recrm-keys-', "is a recrm key file"),
)
_DATA_HEAD = max(len(magic) for magic, _ in _DATA_FILES)
#: the files SQLite keeps beside database ``X`` (as ``X-wal`` and so on), and what they are
_SQLITE_SIDECARS = (("-wal", "write-ahead log"), ("-shm", "shared-memory index"),
                    ("-journal", "rollback journal"))


def output_refusal(path: str) -> str | None:
    """Why ``path`` cannot be written as an output file (``is a directory``, ``is not a
    regular file (…)``, ``is a SQLite database``, ``is a recrm key file``), or None when
    it is absent or is (or links to) another regular file."""
    sidecar = _sqlite_sidecar(path)
    if sidecar is not None:
        return sidecar
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None  # not there yet (or unusable: creating it says why)
    if stat.S_ISREG(mode):
        return _data_file(path)
    return "is a directory" if stat.S_ISDIR(mode) else \
        "is not a regular file (a device, FIFO or socket)"


def _sqlite_sidecar(path: str) -> str | None:
    """Why ``path`` (or the file it links to) is no output when it names a file SQLite
    keeps beside an existing database, whether or not SQLite has written it yet."""
    for name in dict.fromkeys((path, os.path.realpath(path))):
        for suffix, what in _SQLITE_SIDECARS:
            database = name.removesuffix(suffix)
            # isfile first: reading a FIFO named like a database would wait forever
            if database != name and os.path.isfile(database) and \
                    _data_file(database, _DATA_FILES[:1]) is not None:
                return (f"is the {what} of the SQLite database {database!r}; choose another"
                        " file name")
    return None


def _data_file(path: str, kinds: tuple[tuple[bytes, str], ...] = _DATA_FILES) -> str | None:
    """What ``path`` is when it holds data an output must not replace (see the module
    docstring), by its first bytes; None otherwise, or when it cannot be read (writing
    it then says why)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_DATA_HEAD)
    except OSError:
        return None
    found = next((what for magic, what in kinds if head.startswith(magic)), None)
    return None if found is None else f"{found}; choose another file name"
