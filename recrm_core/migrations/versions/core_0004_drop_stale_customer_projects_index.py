"""customer_projects: drop the index on customer_id that databases created before
ebb4d53 still carry (UNIQUE(customer_id, project_id) serves those lookups).

Revision ID: core_0004
Revises: core_0003

Last in line on purpose: a database stamped at any earlier generation may hold the
index, so this runs for every one of them. Written as ``IF EXISTS`` (SQLite and
PostgreSQL both have it) so it also works in ``recrm db sql``'s offline script.
"""

from __future__ import annotations

from alembic import op

revision: str = "core_0004"
down_revision: str | None = "core_0003"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_customer_projects_customer_id")


def downgrade() -> None:
    # Nothing to restore: the index was redundant, and a database made by these
    # migrations never had it.
    pass
