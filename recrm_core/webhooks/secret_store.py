"""Webhook signing secrets at rest: AES-GCM under the key file's encryption key.

A subscription's secret must be readable by ``recrm webhook deliver`` (it signs with
it), so it cannot be hashed like an API key; it is encrypted like ID numbers
(:mod:`recrm_core.idcards`): ``v1:<key id>:<base64 of nonce + ciphertext>``, with
associated data of its own, so a copied database alone signs nothing.
``recrm db rotate-key`` re-encrypts them with the ID numbers (:func:`reencrypt`).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from typing import TYPE_CHECKING

from ..idcards import key_id
from ..keys import KeyFileError, Keys

if TYPE_CHECKING:
    from ..crm import CRM

VERSION = "v1"
_NONCE_BYTES = 12
_ASSOCIATED = b"recrm webhook secret v1"
#: what generated secrets start with, so one is recognised in a configuration
PREFIX = "whsec_"
MIN_LENGTH = 16
MAX_LENGTH = 100


def generate() -> str:
    """A new secret: ``whsec_`` and 256 random bits."""
    return PREFIX + secrets.token_urlsafe(32)


def encrypt(keys: Keys, secret: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(keys.encryption).encrypt(nonce, secret.encode("utf-8"), _ASSOCIATED)
    return f"{VERSION}:{key_id(keys)}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt(keys: Keys, stored: str) -> str:
    """The secret; KeyFileError when the key file cannot open it."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    version, _, rest = stored.partition(":")
    kid, _, sealed = rest.partition(":")
    shown = repr(str(keys.path))
    if version != VERSION or not sealed:
        raise KeyFileError("a webhook secret in the database is not in a known format")
    if kid != key_id(keys):
        raise KeyFileError(
            f"key file {shown} cannot decrypt the webhook secrets: they are under "
            f"encryption key {kid}, the file holds {key_id(keys)}")
    try:
        raw = base64.b64decode(sealed, validate=True)
        plain: bytes = AESGCM(keys.encryption).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _ASSOCIATED)
        return plain.decode("utf-8")
    except (binascii.Error, ValueError, InvalidTag):
        raise KeyFileError(f"key file {shown} cannot decrypt a webhook secret (wrong key, "
                           "or the stored value was altered)") from None


def reencrypt(crm: CRM, old: Keys, new: Keys) -> int:
    """Move every secret not yet under ``new``'s encryption key to it (a rotation;
    a handful of rows, one transaction, safe to run again)."""
    from sqlalchemy import select, update

    from ..tables import WebhookSubscriptionRow as Row

    mine = f"{VERSION}:{key_id(new)}:%"
    with crm.unit_of_work() as uow:
        rows = uow.session.execute(select(Row.id, Row.secret)
                                   .where(~Row.secret.like(mine))).all()
        for sid, stored in rows:
            uow.session.execute(update(Row).where(Row.id == sid, Row.secret == stored)
                                .values(secret=encrypt(new, decrypt(old, stored))))
    return len(rows)
