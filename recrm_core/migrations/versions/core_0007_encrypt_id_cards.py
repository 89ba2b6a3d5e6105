"""ID-card numbers at rest: an identity of kind id_card keeps the keyed hash of the
number in ``value`` (matched on) and its AES-GCM ciphertext in ``display`` (shown);
the numbers already stored in clear are hashed and encrypted with the key file.

No schema change: both fit the columns. The key file is needed only when there are
ID numbers to encrypt, so a database without any needs none. Offline (``recrm db
sql``) nothing can be encrypted: the script refuses to run on a database that holds
clear ID numbers.

Revision ID: core_0007
Revises: core_0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision: str = "core_0007"
down_revision: str | None = "core_0006"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None

_IDENTITIES = sa.table(
    "identities", sa.column("id", sa.Integer), sa.column("kind", sa.String),
    sa.column("value", sa.String), sa.column("display", sa.String))
_CLEAR = sa.and_(_IDENTITIES.c.kind == "id_card", ~_IDENTITIES.c.display.like("v1:%"))
_SEALED = sa.and_(_IDENTITIES.c.kind == "id_card", _IDENTITIES.c.display.like("v1:%"))
_BATCH = 1000


def upgrade() -> None:
    if context.is_offline_mode():
        # The SQL is run later, by someone else: it must fail rather than leave clear
        # numbers that every read would then refuse (PostgreSQL: recrm db sql is for it).
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM identities WHERE kind = 'id_card' AND "
            "display NOT LIKE 'v1:%') THEN RAISE EXCEPTION 'recrm core_0007: this database "
            "holds ID numbers in clear, which only `recrm db upgrade` (with the key file) "
            "can encrypt'; END IF; END $$")
        return
    from recrm_core.idcards import encrypt, match_value
    from recrm_core.migrating import migration_keys

    conn = op.get_bind()
    while True:
        rows = conn.execute(sa.select(_IDENTITIES.c.id, _IDENTITIES.c.value)
                            .where(_CLEAR).order_by(_IDENTITIES.c.id).limit(_BATCH)).all()
        if not rows:
            return
        keys = migration_keys(conn)
        # value held the normalised number (display the same): hashed and encrypted
        conn.execute(
            _IDENTITIES.update().where(_IDENTITIES.c.id == sa.bindparam("b_id"))
            .values(value=sa.bindparam("b_value"), display=sa.bindparam("b_display")),
            [{"b_id": rid, "b_value": match_value(keys, number),
              "b_display": encrypt(keys, number)} for rid, number in rows])


def downgrade() -> None:
    from recrm_core.idcards import decrypt
    from recrm_core.migrating import migration_keys

    conn = op.get_bind()
    while True:
        rows = conn.execute(sa.select(_IDENTITIES.c.id, _IDENTITIES.c.display)
                            .where(_SEALED).order_by(_IDENTITIES.c.id).limit(_BATCH)).all()
        if not rows:
            return
        keys = migration_keys(conn)
        numbers = [(rid, decrypt(keys, text)) for rid, text in rows]
        conn.execute(
            _IDENTITIES.update().where(_IDENTITIES.c.id == sa.bindparam("b_id"))
            .values(value=sa.bindparam("b_value"), display=sa.bindparam("b_value")),
            [{"b_id": rid, "b_value": number} for rid, number in numbers])
