"""A bounce report read again is not recorded twice: ``newsletter_bounces`` gets
``report_key`` (the report's own identity), unique with the channel and the address's
hash. Rows from before have none (NULL: never equal to another).

Revision ID: newsletter_0002
Revises: newsletter_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = 'newsletter_0002'
down_revision: str | None = 'newsletter_0001'
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table('newsletter_bounces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report_key', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f('uq_newsletter_bounces_channel_address_hash_report_key'),
            ['channel', 'address_hash', 'report_key'])


def downgrade() -> None:
    with op.batch_alter_table('newsletter_bounces', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('uq_newsletter_bounces_channel_address_hash_report_key'),
            type_='unique')
        batch_op.drop_column('report_key')
