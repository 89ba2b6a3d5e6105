"""Import jobs of the HTTP API.

Revision ID: core_0010
Revises: core_0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recrm_core.db

revision: str = "core_0010"
down_revision: str | None = "core_0009"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("sheet", sa.String(length=255), nullable=True),
        sa.Column("encoding", sa.String(length=32), nullable=True),
        sa.Column("upload_file", sa.String(length=64), nullable=True),
        sa.Column("upload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("errors_file", sa.String(length=64), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_committed", sa.Integer(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("suspected_duplicates", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", recrm_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", recrm_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", recrm_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"],
                                name=op.f("fk_import_jobs_api_key_id_api_keys"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_index(op.f("ix_import_jobs_api_key_id"), "import_jobs", ["api_key_id"],
                    unique=False)
    op.create_index(op.f("ix_import_jobs_finished_at"), "import_jobs", ["finished_at"],
                    unique=False)
    op.create_index("ix_import_jobs_status_lease_until", "import_jobs",
                    ["status", "lease_until"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_import_jobs_status_lease_until", table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_finished_at"), table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_api_key_id"), table_name="import_jobs")
    op.drop_table("import_jobs")
