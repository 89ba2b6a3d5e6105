"""customers.erased_at: when a person was erased (PIPL Art. 47).

Revision ID: core_0006
Revises: core_0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recrm_core.db

revision: str = "core_0006"
down_revision: str | None = "core_0005"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("erased_at", recrm_core.db.UTCDateTime(timezone=True),
                                         nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("erased_at")
