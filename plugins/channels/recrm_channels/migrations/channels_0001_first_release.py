"""The agencies, agents, rule versions, registrations and their transitions as the first
release created them (they need the core's customers, and its staff directory of core_0005).

Revision ID: channels_0001
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "channels_0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = ("channels",)
depends_on: str | None = "core_0005"


def upgrade() -> None:
    op.create_table('channels_agencies',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_channels_agencies'))
    )
    op.create_table('channels_rule_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('actor_staff', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels_rule_sets')),
    sa.UniqueConstraint('project', 'version', name=op.f('uq_channels_rule_sets_project_version'))
    )
    op.create_table('channels_agents',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('agency', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('mobile', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency'], ['channels_agencies.code'], name=op.f('fk_channels_agents_agency_channels_agencies')),
    sa.ForeignKeyConstraint(['id'], ['staff.id'], name=op.f('fk_channels_agents_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels_agents'))
    )
    op.create_index(op.f('ix_channels_agents_agency'), 'channels_agents', ['agency'], unique=False)
    op.create_table('channels_registrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('agency', sa.String(length=64), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('mobile', sa.String(length=32), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rule_version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('decided_version', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('protected_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('converted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('explanation', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['agency'], ['channels_agencies.code'], name=op.f('fk_channels_registrations_agency_channels_agencies')),
    sa.ForeignKeyConstraint(['agent_id'], ['channels_agents.id'], name=op.f('fk_channels_registrations_agent_id_channels_agents')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_channels_registrations_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels_registrations'))
    )
    op.create_index(op.f('ix_channels_registrations_agency'), 'channels_registrations', ['agency'], unique=False)
    op.create_index(op.f('ix_channels_registrations_agent_id'), 'channels_registrations', ['agent_id'], unique=False)
    op.create_index(op.f('ix_channels_registrations_customer_id'), 'channels_registrations', ['customer_id'], unique=False)
    op.create_index(op.f('ix_channels_registrations_project'), 'channels_registrations', ['project'], unique=False)
    op.create_index('uq_channels_registrations_active', 'channels_registrations', ['mobile', 'project'], unique=True, sqlite_where=sa.text("state IN ('pending', 'confirmed', 'converted')"), postgresql_where=sa.text("state IN ('pending', 'confirmed', 'converted')"))
    op.create_table('channels_transitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('rule_version', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['channels_registrations.id'], name=op.f('fk_channels_transitions_registration_id_channels_registrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels_transitions')),
    sa.UniqueConstraint('registration_id', 'state', name=op.f('uq_channels_transitions_registration_id_state'))
    )
    op.create_index(op.f('ix_channels_transitions_registration_id'), 'channels_transitions', ['registration_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_channels_transitions_registration_id'), table_name='channels_transitions')
    op.drop_table('channels_transitions')
    op.drop_index('uq_channels_registrations_active', table_name='channels_registrations', sqlite_where=sa.text("state IN ('pending', 'confirmed', 'converted')"), postgresql_where=sa.text("state IN ('pending', 'confirmed', 'converted')"))
    op.drop_index(op.f('ix_channels_registrations_project'), table_name='channels_registrations')
    op.drop_index(op.f('ix_channels_registrations_customer_id'), table_name='channels_registrations')
    op.drop_index(op.f('ix_channels_registrations_agent_id'), table_name='channels_registrations')
    op.drop_index(op.f('ix_channels_registrations_agency'), table_name='channels_registrations')
    op.drop_table('channels_registrations')
    op.drop_index(op.f('ix_channels_agents_agency'), table_name='channels_agents')
    op.drop_table('channels_agents')
    op.drop_table('channels_rule_sets')
    op.drop_table('channels_agencies')
