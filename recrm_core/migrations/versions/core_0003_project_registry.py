"""projects: city and service department (the project registry).

Revision ID: core_0003
Revises: core_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision: str = "core_0003"
down_revision: str | None = "core_0002"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Databases of the registry's generation (7396de5, before the CHECK of core_0002
    # landed beside it) are stamped at core_0001 and already have both columns.
    have: set[str] = set()
    if not context.is_offline_mode():
        have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("projects")}
    with op.batch_alter_table("projects") as batch:
        for name in ("city", "service_department"):
            if name not in have:
                batch.add_column(sa.Column(name, sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("service_department")
        batch.drop_column("city")
