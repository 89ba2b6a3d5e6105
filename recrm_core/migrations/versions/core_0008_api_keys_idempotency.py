"""The HTTP API's keys and the responses kept for ``Idempotency-Key`` retries.

Revision ID: core_0008
Revises: core_0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recrm_core.db

revision: str = "core_0008"
down_revision: str | None = "core_0007"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("created_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", recrm_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"],
                                name=op.f("fk_api_keys_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_staff_id"), "api_keys", ["staff_id"], unique=False)
    op.create_table(
        "api_idempotency",
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"],
                                name=op.f("fk_api_idempotency_api_key_id_api_keys"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("api_key_id", "key", name=op.f("pk_api_idempotency")),
    )
    op.create_index(op.f("ix_api_idempotency_customer_id"), "api_idempotency",
                    ["customer_id"], unique=False)
    op.create_index(op.f("ix_api_idempotency_created_at"), "api_idempotency",
                    ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_idempotency_created_at"), table_name="api_idempotency")
    op.drop_index(op.f("ix_api_idempotency_customer_id"), table_name="api_idempotency")
    op.drop_table("api_idempotency")
    op.drop_index(op.f("ix_api_keys_staff_id"), table_name="api_keys")
    op.drop_table("api_keys")
