"""Commission terms per agency and project, and the commission ledger (one entry per
unique key).

Revision ID: channels_0002
Revises: channels_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "channels_0002"
down_revision: str | None = "channels_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table('channels_terms',
    sa.Column('agency', sa.String(length=64), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('percent', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('fixed', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('visit_reward', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('subscription_reward', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('actor_staff', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency'], ['channels_agencies.code'], name=op.f('fk_channels_terms_agency_channels_agencies')),
    sa.PrimaryKeyConstraint('agency', 'project', name=op.f('pk_channels_terms'))
    )
    op.create_table('channels_commission_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('agency', sa.String(length=64), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('unit', sa.String(length=64), nullable=True),
    sa.Column('deal_amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency'], ['channels_agencies.code'], name=op.f('fk_channels_commission_entries_agency_channels_agencies')),
    sa.ForeignKeyConstraint(['registration_id'], ['channels_registrations.id'], name=op.f('fk_channels_commission_entries_registration_id_channels_registrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels_commission_entries')),
    sa.UniqueConstraint('key', name=op.f('uq_channels_commission_entries_key'))
    )
    op.create_index(op.f('ix_channels_commission_entries_agency'), 'channels_commission_entries', ['agency'], unique=False)
    op.create_index(op.f('ix_channels_commission_entries_project'), 'channels_commission_entries', ['project'], unique=False)
    op.create_index(op.f('ix_channels_commission_entries_registration_id'), 'channels_commission_entries', ['registration_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_channels_commission_entries_registration_id'), table_name='channels_commission_entries')
    op.drop_index(op.f('ix_channels_commission_entries_project'), table_name='channels_commission_entries')
    op.drop_index(op.f('ix_channels_commission_entries_agency'), table_name='channels_commission_entries')
    op.drop_table('channels_commission_entries')
    op.drop_table('channels_terms')
