"""customers: a row cannot be merged into itself (CHECK ck_customers_not_self_merged).

Revision ID: core_0002
Revises: core_0001
"""

from __future__ import annotations

from alembic import op

revision: str = "core_0002"
down_revision: str | None = "core_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A row pointing at itself vanished from every count and resolved to nothing:
    # the constraint would refuse the upgrade, so such a row is made a live customer.
    op.execute("UPDATE customers SET merged_into = NULL WHERE merged_into = id")
    # SQLite cannot add a CHECK to a table: batch mode rebuilds it, rows kept.
    with op.batch_alter_table("customers") as batch:
        batch.create_check_constraint(
            op.f("ck_customers_not_self_merged"), "merged_into IS NULL OR merged_into <> id")


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_constraint(op.f("ck_customers_not_self_merged"), type_="check")
