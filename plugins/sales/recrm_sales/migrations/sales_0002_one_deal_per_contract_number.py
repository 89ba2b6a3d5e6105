"""One deal per contract number at a project: ``sales_deals`` gets the unique index
``uq_sales_deals_contract`` on (project, contract_no). The check before signing read
other deals without a lock, so two offices signing two deals with one number at the
same moment both passed it on PostgreSQL. Deals not signed have no number (NULL: never
equal to another).

A database where that already happened is refused with the deals to renumber, rather
than failing inside the index's creation.

Revision ID: sales_0002
Revises: sales_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from recrm_core.migrating import MigrationError

revision: str = 'sales_0002'
down_revision: str | None = 'sales_0001'
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    if not context.is_offline_mode():  # `recrm db sql` writes the SQL and reads nothing
        _refuse_shared_numbers()
    with op.batch_alter_table('sales_deals', schema=None) as batch_op:
        batch_op.create_index('uq_sales_deals_contract', ['project', 'contract_no'],
                              unique=True)


def _refuse_shared_numbers() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT project, contract_no, MIN(id), MAX(id) FROM sales_deals"
        " WHERE contract_no IS NOT NULL GROUP BY project, contract_no"
        " HAVING COUNT(*) > 1 ORDER BY 1, 2")).all()
    if shared:
        listed = "; ".join(f"{p} {n!r}: deals {a} and {b}" for p, n, a, b in shared[:10])
        raise MigrationError(
            f"sales_0002: {len(shared)} contract number(s) belong to more than one deal "
            f"({listed}); give each deal its own number, then upgrade again")


def downgrade() -> None:
    with op.batch_alter_table('sales_deals', schema=None) as batch_op:
        batch_op.drop_index('uq_sales_deals_contract')
