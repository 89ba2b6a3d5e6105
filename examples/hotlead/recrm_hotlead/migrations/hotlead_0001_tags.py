"""hotlead_tags: visits counted per customer, and when they became a hot lead.

Revision ID: hotlead_0001
Revises: None (the first revision of the branch ``hotlead``)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "hotlead_0001"
down_revision: str | None = None
#: the branch carries the plugin's name: ``recrm db upgrade --plugin hotlead``
branch_labels: tuple[str, ...] | None = ("hotlead",)
#: the core revision whose tables this one needs (``customers``)
depends_on: str | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "hotlead_tags",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("hot_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("project", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_hotlead_tags_customer_id_customers")),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_hotlead_tags")),
    )
    op.create_index(op.f("ix_hotlead_tags_hot_since"), "hotlead_tags", ["hot_since"])


def downgrade() -> None:
    op.drop_index(op.f("ix_hotlead_tags_hot_since"), table_name="hotlead_tags")
    op.drop_table("hotlead_tags")
