"""The key file: three independent secret keys, kept outside the database.

One key makes keyed hashes (the audit's now, matching later), one encrypts, one signs
tokens (unsubscribe links). They are independent so that a leak or a rotation of one
touches only its own use. A database copy alone is useless without the key file, which
is why the file lives beside ``recrm.toml`` (or the SQLite file), never inside the
database.

Every failure is a :class:`KeyFileError`: a one-line message naming the file and what
is wrong, never any key material; the CLI exits 2 with it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .regularfile import open_regular

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from .crm import CRM

KEY_FILE_ENV = "RECRM_KEY_FILE"
KEY_FILE_NAME = "recrm.key"

KEY_BYTES = 32
_FORMAT = "recrm-keys-1"
_KEY_NAMES = ("hashing", "encryption", "signing")
# A key file is about 200 bytes; the bound only stops a mistaken path (a log, a
# database) from being read whole into memory.
_MAX_BYTES = 64 * 1024
_HASH_PREFIX = "h1:"
# 128 bits: collisions stay out of reach for any CRM's row count, and a shorter
# stored value keeps the indexes small.
_HASH_HEX_CHARS = 32
_FINGERPRINT_LABEL = b"recrm key fingerprint 1"
_NO_PATH_MESSAGE = "no key file configured: set key_file in recrm.toml (or RECRM_KEY_FILE)"


class KeyFileError(ConfigError):
    """The key file is not configured, missing, unreadable or malformed (exit 2)."""


class _KeyFileMissing(KeyFileError):
    """Nothing at the path: the one failure ``ensure_key_file`` repairs by creating."""


def _show(path: Path | str) -> str:
    # repr keeps a path holding a newline or a control character on one line.
    return repr(str(path))


@dataclass(frozen=True)
class Keys:
    """The three keys of a key file and where they came from.

    The keys are left out of ``repr`` so that a traceback or a log line holding a
    ``Keys`` never shows them.
    """

    hashing: bytes = field(repr=False)
    encryption: bytes = field(repr=False)
    signing: bytes = field(repr=False)
    path: Path

    def __post_init__(self) -> None:
        for name in _KEY_NAMES:
            if len(getattr(self, name)) != KEY_BYTES:
                raise ValueError(f"the {name} key must be {KEY_BYTES} bytes")

    def keyed_hash(self, kind: str, value: str) -> str:
        """``h1:`` and 32 hex digits of HMAC-SHA256 under the hashing key.

        ``kind`` names the domain (``"mobile"``, ``"email"``), so one string hashed as
        two kinds gives two unrelated values and a hash of one kind never matches
        another's. The ``h1:`` prefix leaves room for a later scheme beside this one.
        """
        if not kind or "\x1f" in kind:
            # The separator inside a kind would let ("a\x1fb", "c") and ("a", "b\x1fc")
            # hash alike; kinds are the code's own constants, so this is a bug.
            raise ValueError(f"invalid hash kind {kind!r}")
        # surrogatepass: a lone surrogate must still hash (deterministically) rather
        # than fail, and its bytes are not valid UTF-8, so they collide with no string.
        message = f"{kind}\x1f{value}".encode("utf-8", "surrogatepass")
        digest = hmac.new(self.hashing, message, hashlib.sha256).hexdigest()
        return _HASH_PREFIX + digest[:_HASH_HEX_CHARS]

    def fingerprint(self) -> str:
        """A short identifier of the three keys that reveals none of them.

        A database stores it so that a later run can tell a wrong key file from the
        right one before it compares a single hash; one part per key says which differs.
        """
        parts = (
            hmac.new(getattr(self, name), _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:8]
            for name in _KEY_NAMES
        )
        return "-".join(parts)


def default_key_path(config_path: Path | None, database_url: str) -> Path | None:
    """Where the key file lives when ``key_file`` is not set.

    Beside the configuration file when there is one; else beside the SQLite database
    file; else None: an in-memory SQLite has no place of its own, and a PostgreSQL
    server's files are not ours to write beside, so the setting is required there.
    """
    if config_path is not None:
        return config_path.parent / KEY_FILE_NAME
    database = _sqlite_file(database_url)
    if database is None:
        return None
    return Path(database).parent / KEY_FILE_NAME


def _sqlite_file(database_url: str) -> str | None:
    from .db import database_url as parsed_url

    url = parsed_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if url.query.get("uri") == "true":
        # A SQLite URI filename (file:NAME?mode=memory): the part before any query
        # is the file, unless the URI asks for a memory database.
        if url.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:").split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    return database


def key_file_path(setting: str | None, config_path: Path | None, database_url: str) -> Path | None:
    """The key file to use: ``RECRM_KEY_FILE``, else the ``key_file`` setting, else
    :func:`default_key_path`; None when none of them gives one.

    A relative setting is relative to the configuration file's directory, so the same
    ``recrm.toml`` finds the same file from any working directory; without a
    configuration file it is relative to the working directory.
    """
    from_env = os.environ.get(KEY_FILE_ENV, "")
    if from_env:
        return Path(from_env).expanduser()
    if setting:
        configured = Path(setting).expanduser()
        if config_path is not None and not configured.is_absolute():
            return config_path.parent / configured
        return configured
    return default_key_path(config_path, database_url)


def create_key_file(path: Path) -> Keys:
    """Create a key file of three fresh, independent keys at ``path``.

    Refuses an existing file: overwriting one would make every stored hash and every
    encrypted value unreadable. The file is owner-only from its first byte, and appears
    complete or not at all.
    """
    if os.path.lexists(path):
        raise KeyFileError(f"key file {_show(path)} already exists")
    keys = Keys(
        hashing=secrets.token_bytes(KEY_BYTES),
        encryption=secrets.token_bytes(KEY_BYTES),
        signing=secrets.token_bytes(KEY_BYTES),
        path=path,
    )
    try:
        _write_new(path, _encode(keys))
    except FileExistsError:
        raise KeyFileError(f"key file {_show(path)} already exists") from None
    except (FileNotFoundError, NotADirectoryError):
        raise KeyFileError(
            f"cannot create key file {_show(path)}: directory {_show(path.parent)} does not exist"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {_show(path)}: {exc.strerror}") from None
    except ValueError:  # a NUL in the path
        raise KeyFileError(f"cannot create key file {_show(path)}: not a valid path") from None
    return keys


def _encode(keys: Keys) -> bytes:
    document: dict[str, str] = {"format": _FORMAT}
    for name in _KEY_NAMES:
        document[name] = base64.b64encode(getattr(keys, name)).decode("ascii")
    return (json.dumps(document, indent=2) + "\n").encode("ascii")


def _write_new(path: Path, data: bytes) -> None:
    # Written whole under a temporary name, then linked into place: a crash leaves at
    # worst a stray temporary, never a half key file, and link (unlike rename) fails
    # rather than replace a file another process created meanwhile.
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    _write_exclusive(temporary, data)
    try:
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise
        except OSError:
            # A file system without hard links (some network and FAT mounts): an
            # exclusive create of the file itself still never replaces one; a crash
            # mid-write could leave it short, which load_keys refuses.
            _write_exclusive(path, data)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    _sync_directory(path.parent)


def _write_exclusive(path: Path, data: bytes) -> None:
    # The mode is given to open itself so no other user can open the file between its
    # creation and a chmod; fchmod then undoes a umask that removed owner bits.
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    try:
        if sys.platform != "win32":
            os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def _sync_directory(directory: Path) -> None:
    # The new directory entry must survive a power cut too, or a database could hold
    # hashes made under keys whose file then vanishes. Best effort: not every system
    # lets a directory be opened or synced.
    if sys.platform == "win32":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_keys(path: Path | None) -> Keys:
    """The keys in the key file at ``path``; :class:`KeyFileError` when there is no
    path, no file, or the file is unsafe or malformed."""
    if path is None:
        raise KeyFileError(_NO_PATH_MESSAGE)
    shown = _show(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise KeyFileError(f"key file {shown} is a symbolic link to nothing") from None
        raise _KeyFileMissing(
            f"key file {shown} not found; `recrm init` creates one (`recrm db upgrade` too, "
            "in the default place)"
        ) from None
    except (OSError, ValueError):
        pass  # open_regular below says what is wrong, in its own words
    with open_regular(str(path), lambda why: KeyFileError(f"key file: {why}")) as handle:
        mode = os.fstat(handle.fileno()).st_mode
        # Checked on the open file, not the name, so a swap after the check cannot
        # slip through. Strict like ssh: a key others can read is no longer secret,
        # and one others can write could be replaced with keys they know.
        if sys.platform != "win32" and stat.S_IMODE(mode) & 0o077:
            how = "readable" if stat.S_IMODE(mode) & 0o044 else "accessible"
            raise KeyFileError(f"key file {shown} is {how} by other users; chmod 600 it")
        try:
            raw = handle.read(_MAX_BYTES + 1)
        except OSError as exc:
            raise KeyFileError(f"key file: cannot read {shown}: {exc.strerror}") from None
    if len(raw) > _MAX_BYTES:
        raise KeyFileError(f"key file {shown} is larger than {_MAX_BYTES // 1024} KB")
    return _decode(raw, path, shown)


def _decode(raw: bytes, path: Path, shown: str) -> Keys:
    try:
        document: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise KeyFileError(f"key file {shown} is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise KeyFileError(f"key file {shown} is not a recrm key file (format is not {_FORMAT!r})")
    # Fields beyond the keys are ignored, so a later version may add some (a creation
    # date, a comment) without making the file unreadable to this one.
    keys: dict[str, bytes] = {}
    for name in _KEY_NAMES:
        encoded = document.get(name)
        if encoded is None:
            raise KeyFileError(f"key file {shown} has no {name!r} key")
        if not isinstance(encoded, str):
            raise KeyFileError(f"key file {shown}: the {name!r} key is not a base64 string")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise KeyFileError(f"key file {shown}: the {name!r} key is not base64") from None
        if len(key) != KEY_BYTES:
            raise KeyFileError(
                f"key file {shown}: the {name!r} key is {len(key)} bytes, not {KEY_BYTES}"
            )
        for other, seen in keys.items():
            if hmac.compare_digest(key, seen):
                # Copied or hand-made files do this; sharing a key between uses
                # defeats keeping them apart.
                raise KeyFileError(
                    f"key file {shown}: the {other!r} and {name!r} keys are equal; "
                    "they must be independent"
                )
        keys[name] = key
    return Keys(
        hashing=keys["hashing"], encryption=keys["encryption"], signing=keys["signing"], path=path
    )


def ensure_key_file(path: Path | None) -> tuple[Keys, bool]:
    """The keys at ``path``, creating the file first when nothing is there; the flag
    says whether it was created (``recrm db upgrade`` reports that)."""
    if path is None:
        raise KeyFileError(_NO_PATH_MESSAGE)
    try:
        return load_keys(path), False
    except _KeyFileMissing:
        pass
    try:
        return create_key_file(path), True
    except KeyFileError:
        # A file there now means another process created it between the look and the
        # create: its keys are the ones to use. Nothing there means creating failed.
        if not os.path.lexists(path):
            raise
    return load_keys(path), False


#: the row of ``key_fingerprints`` that holds the key file's fingerprint
FINGERPRINT_ROW = "key_file"


def verify_keys(crm: CRM, keys: Keys) -> None:
    """Refuse keys the database was not first used with (KeyFileError, exit 2): their
    hashes would match nothing already stored. The first use records them."""
    from sqlalchemy.exc import IntegrityError

    from .tables import KeyFingerprintRow

    mine = keys.fingerprint()
    known = _recorded(crm)
    if known is None:
        try:
            with crm.unit_of_work() as uow:
                uow.session.add(KeyFingerprintRow(name=FINGERPRINT_ROW, fingerprint=mine))
        except IntegrityError:  # another process recorded its keys first
            known = _recorded(crm)
    if known is not None and known != mine:
        raise _not_this_database(keys)


def _not_this_database(keys: Keys) -> KeyFileError:
    return KeyFileError(
        f"key file {_show(keys.path)} does not belong to this database (it was first "
        "used with other keys); restore its own key file")


def verify_keys_on(conn: Connection, keys: Keys) -> None:
    """:func:`verify_keys` inside a transaction already open on ``conn`` (a
    migration's: on SQLite another transaction would wait for its lock)."""
    from sqlalchemy import insert, select

    from .tables import KeyFingerprintRow

    known = conn.scalar(select(KeyFingerprintRow.fingerprint)
                        .where(KeyFingerprintRow.name == FINGERPRINT_ROW))
    if known is None:
        conn.execute(insert(KeyFingerprintRow).values(name=FINGERPRINT_ROW,
                                                      fingerprint=keys.fingerprint()))
    elif known != keys.fingerprint():
        raise _not_this_database(keys)


def _recorded(crm: CRM) -> str | None:
    from sqlalchemy import select

    from .tables import KeyFingerprintRow

    with crm.unit_of_work(readonly=True) as uow:
        return uow.session.scalar(select(KeyFingerprintRow.fingerprint)
                                  .where(KeyFingerprintRow.name == FINGERPRINT_ROW))


def create_rotated_key_file(path: Path, keys: Keys) -> Keys:
    """A new key file at ``path`` with ``keys``' hashing and signing keys and a fresh
    encryption key (``recrm db rotate-key``): the hashes and the signed links already
    given out stay valid; only what is encrypted moves to the new key."""
    rotated = Keys(hashing=keys.hashing, encryption=secrets.token_bytes(KEY_BYTES),
                   signing=keys.signing, path=path)
    try:
        _write_new(path, _encode(rotated))
    except FileExistsError:
        raise KeyFileError(f"key file {_show(path)} already exists") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {_show(path)}: {exc.strerror}") from None
    return rotated


def install_key_file(source: Path, target: Path) -> None:
    """Move the key file ``source`` over ``target`` in one step (a rename on the same
    file system: ``target`` is whole before and after, never half-written)."""
    try:
        os.replace(source, target)
    except OSError as exc:
        raise KeyFileError(f"cannot move key file {_show(source)} to {_show(target)}: "
                           f"{exc.strerror}") from None
    _sync_directory(target.parent)


def record_fingerprint(crm: CRM, keys: Keys) -> None:
    """Record ``keys`` as the database's own (after a rotation re-encrypted everything)."""
    from sqlalchemy import delete

    from .tables import KeyFingerprintRow

    with crm.unit_of_work() as uow:
        uow.session.execute(delete(KeyFingerprintRow)
                            .where(KeyFingerprintRow.name == FINGERPRINT_ROW))
        uow.session.add(KeyFingerprintRow(name=FINGERPRINT_ROW, fingerprint=keys.fingerprint()))


def recorded_fingerprint(crm: CRM) -> str | None:
    return _recorded(crm)
