"""Interactions get an optional duration in minutes (contact minutes of the staff
report, ``interactions log --minutes``).

Revision ID: core_0013
Revises: core_0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "core_0013"
down_revision: str | None = "core_0012"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("minutes", sa.Integer(), nullable=True))
        # A day at most: a longer figure is a typing mistake (hours typed as minutes
        # times sixty), and would swamp the contact-hours target of the staff report.
        batch.create_check_constraint(
            op.f("ck_interactions_minutes_in_range"),
            "minutes IS NULL OR (minutes >= 0 AND minutes <= 1440)")


def downgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.drop_constraint(op.f("ck_interactions_minutes_in_range"), type_="check")
        batch.drop_column("minutes")
