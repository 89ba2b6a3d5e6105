"""``recrm db rotate-key``: move the encrypted ID numbers to a new encryption key.

The procedure, each step safe to crash in and resumable by running the command again:

1. write the new key file (same hashing and signing keys, a new encryption key) at
   ``--new-key-file``; a rerun finds it there and goes on with it;
2. re-encrypt, in batches each committed on its own, every ID number whose ciphertext
   names another key id than the new key's: a rerun re-does only those;
3. record the new key file's fingerprint as the database's;
4. move the new key file over the configured one (one rename): the old encryption
   key is gone, and with it nothing left in the database can be read by it.

The hashing and signing keys are not rotated: new hashes would match nothing stored,
and new signatures would break the links already sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import and_, select, update

from .idcards import KIND, decrypt, encrypt, key_id
from .keys import (
    KeyFileError,
    Keys,
    create_rotated_key_file,
    install_key_file,
    load_keys,
    record_fingerprint,
    recorded_fingerprint,
)
from .tables import IdentityRow

if TYPE_CHECKING:
    from .crm import CRM

DEFAULT_BATCH = 500


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: ID numbers re-encrypted, the new key id, the key file."""

    reencrypted: int
    key_id: str
    key_file: Path


def rotate_key(crm: CRM, new_key_file: Path, *, batch_size: int = DEFAULT_BATCH,
               after_batch: Callable[[int], None] | None = None) -> Rotation:
    """Run (or resume) the rotation; ``after_batch`` is called with the running count
    after each committed batch (progress; tests crash there)."""
    target = crm.key_file
    current = load_keys(target)
    assert target is not None  # load_keys refuses None
    if new_key_file.resolve() == target.resolve():
        raise KeyFileError("--new-key-file must be another path than the key file itself")
    if new_key_file.exists():
        new = load_keys(new_key_file)  # a rotation that stopped: go on with its key
        if (new.hashing, new.signing) != (current.hashing, current.signing) \
                or new.encryption == current.encryption:
            raise KeyFileError(
                f"key file {str(new_key_file)!r} is not a rotation of {str(target)!r} "
                "(it must hold the same hashing and signing keys and another encryption "
                "key); remove it to start a new rotation")
    else:
        new = create_rotated_key_file(new_key_file, current)
    recorded = recorded_fingerprint(crm)
    done = 0
    if recorded != new.fingerprint():
        if recorded not in (None, current.fingerprint()):
            raise KeyFileError(f"key file {str(target)!r} does not belong to this database "
                               "(it was first used with other keys); restore its own key file")
        done = _reencrypt(crm, current, new, batch_size, after_batch)
        # the webhooks' signing secrets are under the same key: a handful, at once
        from .webhooks.secret_store import reencrypt as reencrypt_webhook_secrets

        reencrypt_webhook_secrets(crm, current, new)
        record_fingerprint(crm, new)
    install_key_file(new_key_file, target)
    crm.__dict__.pop("_keys", None)  # the next use loads (and checks) the new file
    return Rotation(done, key_id(new), target)


def _reencrypt(crm: CRM, old: Keys, new: Keys, batch_size: int,
               after_batch: Callable[[int], None] | None) -> int:
    done = 0
    mine = f"v1:{key_id(new)}:%"
    pending = and_(IdentityRow.kind == KIND, ~IdentityRow.display.like(mine))
    while True:
        with crm.unit_of_work() as uow:
            rows = uow.session.execute(
                select(IdentityRow.id, IdentityRow.display).where(pending)
                .order_by(IdentityRow.id).limit(batch_size)).all()
            if not rows:
                return done
            for rid, display in rows:
                # decrypt raises (never guesses) for a value under neither key
                number = decrypt(old, display)
                # only if unchanged meanwhile; a changed row is still pending, and
                # the next batch takes it again
                uow.session.execute(
                    update(IdentityRow)
                    .where(IdentityRow.id == rid, IdentityRow.display == display)
                    .values(display=encrypt(new, number)))
        done += len(rows)
        if after_batch is not None:
            after_batch(done)
