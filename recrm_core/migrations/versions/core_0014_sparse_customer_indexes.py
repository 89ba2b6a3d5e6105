"""customers: the indexes on ``email`` and ``merged_into`` hold only the rows that
have one (partial, ``WHERE … IS NOT NULL``).

Revision ID: core_0014
Revises: core_0013

Every query that reads them names a value (``email = …``, ``merged_into = …``,
which imply ``IS NOT NULL``: both databases still use them, checked with EXPLAIN),
while most rows have neither: no customer an import creates is merged, and many have
no email. A full index still takes an entry for each; a partial one skips them: on
PostgreSQL ~0.8 µs of server CPU per imported row, ~12 % of the customers COPY
(``bench/README.md``, "PostgreSQL import: what the schema costs"). It also leaves
``merged_into IS NULL`` (every active customer) no index to be planned on, a plan
PostgreSQL once chose without statistics, reading every active customer per probe.
Rebuilding an index locks the table against writes for as long as it takes (seconds
at a million customers).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "core_0014"
down_revision: str | None = "core_0013"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None

_SPARSE = (("ix_customers_email", "email"), ("ix_customers_merged_into", "merged_into"))


def upgrade() -> None:
    for name, column in _SPARSE:
        op.drop_index(name, table_name="customers")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "customers", [column], unique=False,
                        sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, column in _SPARSE:
        op.drop_index(name, table_name="customers")
        op.create_index(name, "customers", [column], unique=False)
