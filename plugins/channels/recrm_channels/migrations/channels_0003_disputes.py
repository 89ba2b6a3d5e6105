"""Disputes over who brought a customer (one open dispute per claimant registration).

Revision ID: channels_0003
Revises: channels_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "channels_0003"
down_revision: str | None = "channels_0002"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

_OPEN = "state = 'open'"


def upgrade() -> None:
    op.create_table('channels_disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('claimant_id', sa.Integer(), nullable=False),
    sa.Column('agency', sa.String(length=64), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('opened_by', sa.String(length=64), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolution', sa.String(length=500), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agency'], ['channels_agencies.code'], name=op.f('fk_channels_disputes_agency_channels_agencies')),
    sa.ForeignKeyConstraint(['claimant_id'], ['channels_registrations.id'], name=op.f('fk_channels_disputes_claimant_id_channels_registrations')),
    sa.ForeignKeyConstraint(['registration_id'], ['channels_registrations.id'], name=op.f('fk_channels_disputes_registration_id_channels_registrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels_disputes'))
    )
    op.create_index(op.f('ix_channels_disputes_agency'), 'channels_disputes', ['agency'], unique=False)
    op.create_index(op.f('ix_channels_disputes_claimant_id'), 'channels_disputes', ['claimant_id'], unique=False)
    op.create_index(op.f('ix_channels_disputes_project'), 'channels_disputes', ['project'], unique=False)
    op.create_index(op.f('ix_channels_disputes_registration_id'), 'channels_disputes', ['registration_id'], unique=False)
    op.create_index('uq_channels_disputes_open', 'channels_disputes', ['claimant_id'], unique=True, sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN))


def downgrade() -> None:
    op.drop_index('uq_channels_disputes_open', table_name='channels_disputes', sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN))
    op.drop_index(op.f('ix_channels_disputes_registration_id'), table_name='channels_disputes')
    op.drop_index(op.f('ix_channels_disputes_project'), table_name='channels_disputes')
    op.drop_index(op.f('ix_channels_disputes_claimant_id'), table_name='channels_disputes')
    op.drop_index(op.f('ix_channels_disputes_agency'), table_name='channels_disputes')
    op.drop_table('channels_disputes')
