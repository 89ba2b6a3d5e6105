"""ID-card numbers at rest: matched on a keyed hash, shown from an AEAD ciphertext.

An identity of kind ``id_card`` stores ``value`` = the keyed hash of the normalised
number (what identity resolution, ``find --id-card``, segments and the import compare,
without decrypting anything) and ``display`` = the number encrypted with AES-GCM
under the key file's encryption key: ``v1:<key id>:<base64 of nonce + ciphertext>``.
The key id names the encryption key, so ``recrm db rotate-key`` can tell the rows it
has re-encrypted from those still under the old key, and resume after a crash.

Decryption happens only where a number is shown (``Customer.id_card``, the 360 view).
A ciphertext the key file cannot open is a :class:`~recrm_core.keys.KeyFileError`
(exit 2, one line naming the file): never a wrong number.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
from typing import TYPE_CHECKING, Any

from .errors import RecrmError
from .keys import KeyFileError, Keys

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from .crm import CRM

#: the identity kind (``resolution.ID_CARD``) and the keyed hash's domain
KIND = "id_card"
VERSION = "v1"
_NONCE_BYTES = 12
# Bound to every ciphertext: a number encrypted for an ID card cannot be passed off as
# another kind of value (should a later kind be encrypted under the same key).
_ASSOCIATED = b"recrm identities id_card v1"
_KEY_ID_LABEL = b"recrm encryption key id 1"


def key_id(keys: Keys) -> str:
    """Eight hex digits naming the encryption key (and nothing of it)."""
    return _key_id(keys.encryption)


# Cached per key: the import encrypts per row, and building the cipher (or the key id)
# each time would cost more than the encryption itself.
@functools.lru_cache(maxsize=4)
def _key_id(key: bytes) -> str:
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]


@functools.lru_cache(maxsize=4)
def _cipher(key: bytes) -> Any:
    # imported here: commands that never touch an ID number do not load cryptography
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def match_value(keys: Keys, number: str) -> str:
    """What identities store and match on for a normalised ID number."""
    return keys.keyed_hash(KIND, number)


def encrypt(keys: Keys, number: str) -> str:
    # A random nonce per value: 96 bits leave collisions out of reach for the number
    # of values one key encrypts (far below 2**32).
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(keys.encryption).encrypt(nonce, number.encode("utf-8"), _ASSOCIATED)
    return f"{VERSION}:{key_id(keys)}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def stored_key_id(text: str) -> str | None:
    """The key id of a stored ciphertext; None for anything else (a clear number)."""
    version, sep, rest = text.partition(":")
    if version != VERSION or not sep:
        return None
    kid, sep, _ = rest.partition(":")
    return kid if sep else None


def decrypt(keys: Keys, text: str) -> str:
    """The number in a stored ciphertext; KeyFileError if the key file's encryption
    key is not the one it was made with (or the value was tampered with)."""
    from cryptography.exceptions import InvalidTag

    kid = stored_key_id(text)
    if kid is None:
        # Only a database migrated outside recrm (or edited by hand) holds this.
        raise RecrmError("an ID number in the database is not encrypted: run `recrm db upgrade`")
    shown = repr(str(keys.path))
    if kid != key_id(keys):
        raise KeyFileError(
            f"key file {shown} cannot decrypt the ID numbers: they are under encryption key "
            f"{kid}, the file holds {key_id(keys)} (an old key file, or an unfinished "
            "`recrm db rotate-key`)")
    try:
        raw = base64.b64decode(text.rsplit(":", 1)[1], validate=True)
        number: bytes = _cipher(keys.encryption).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _ASSOCIATED)
        return number.decode("utf-8")
    except (binascii.Error, ValueError, InvalidTag):
        raise KeyFileError(
            f"key file {shown} cannot decrypt an ID number (wrong key, or the stored "
            "value was altered)") from None


def keys_for_storing(crm: CRM) -> Keys:
    """``crm.keys``, for storing an ID number: when the key file's default place
    (beside the configuration or the SQLite file) is empty and the database has never
    used a key file, one is created there first, as ``recrm db upgrade`` would. Never
    at a configured path (a typo must not get new keys), nor for a database that
    recorded another key file (its hashes would match nothing)."""
    from .keys import default_key_path, ensure_key_file, recorded_fingerprint

    path = crm.key_file
    if (path is not None and not os.path.lexists(path)
            and path == default_key_path(crm.config_file, crm.config.database_url)
            and recorded_fingerprint(crm) is None):
        ensure_key_file(path)
    return crm.keys


# -- the keys of a connection's CRM --------------------------------------------------------
def keys_of(conn: Connection) -> Keys:
    """The keys of the CRM whose engine ``conn`` belongs to (loaded on first use):
    customers are built from rows by module functions that get a connection, not the
    CRM (plugins call them too)."""
    from .crm import crm_of

    crm = crm_of(conn.engine)
    if crm is None:
        raise KeyFileError("no key file: this connection belongs to no CRM")
    return crm.keys


def decrypt_on(conn: Connection | Any, text: str) -> str:
    return decrypt(keys_of(conn), text)
