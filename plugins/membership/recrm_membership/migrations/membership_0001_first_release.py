"""The owners' club tables as the first release created them (they need the core's customers).

Revision ID: membership_0001
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "membership_0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = ("membership",)
depends_on: str | None = "core_0001"


def upgrade() -> None:
    op.create_table('membership_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('actor_staff', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_membership_events_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership_events'))
    )
    op.create_index(op.f('ix_membership_events_customer_id'), 'membership_events', ['customer_id'], unique=False)
    op.create_table('membership_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('event_kind', sa.String(length=32), nullable=True),
    sa.Column('event_subject', sa.Integer(), nullable=True),
    sa.Column('event_ref', sa.String(length=128), nullable=True),
    sa.Column('project', sa.String(length=64), nullable=True),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.Column('source_entry_id', sa.Integer(), nullable=True),
    sa.Column('duplicate_of', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('actor_staff', sa.String(length=64), nullable=True),
    sa.Column('actor_role', sa.String(length=32), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_membership_ledger_customer_id_customers')),
    sa.ForeignKeyConstraint(['duplicate_of'], ['membership_ledger.id'], name=op.f('fk_membership_ledger_duplicate_of_membership_ledger')),
    sa.ForeignKeyConstraint(['source_entry_id'], ['membership_ledger.id'], name=op.f('fk_membership_ledger_source_entry_id_membership_ledger')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership_ledger')),
    sa.UniqueConstraint('event_kind', 'event_subject', 'event_ref', name=op.f('uq_membership_ledger_event_kind_event_subject_event_ref'))
    )
    op.create_index(op.f('ix_membership_ledger_customer_id'), 'membership_ledger', ['customer_id'], unique=False)
    op.create_index(op.f('ix_membership_ledger_expires_at'), 'membership_ledger', ['expires_at'], unique=False)
    op.create_table('membership_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('tier', sa.String(length=32), nullable=False),
    sa.Column('contracts', sa.Integer(), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('merged_into', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_membership_members_customer_id_customers')),
    sa.ForeignKeyConstraint(['merged_into'], ['customers.id'], name=op.f('fk_membership_members_merged_into_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership_members')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_membership_members_customer_id')),
    sa.UniqueConstraint('number', name=op.f('uq_membership_members_number'))
    )
    op.create_index(op.f('ix_membership_members_status'), 'membership_members', ['status'], unique=False)
    op.create_table('membership_tier_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('old_tier', sa.String(length=32), nullable=True),
    sa.Column('new_tier', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('lifetime_points', sa.Integer(), nullable=False),
    sa.Column('contracts', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_membership_tier_changes_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership_tier_changes'))
    )
    op.create_index(op.f('ix_membership_tier_changes_customer_id'), 'membership_tier_changes', ['customer_id'], unique=False)
    op.create_table('membership_referrals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referrer_id', sa.Integer(), nullable=False),
    sa.Column('referred_id', sa.Integer(), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('converted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reward_entry_id', sa.Integer(), nullable=True),
    sa.Column('actor_staff', sa.String(length=64), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['referred_id'], ['customers.id'], name=op.f('fk_membership_referrals_referred_id_customers')),
    sa.ForeignKeyConstraint(['referrer_id'], ['customers.id'], name=op.f('fk_membership_referrals_referrer_id_customers')),
    sa.ForeignKeyConstraint(['reward_entry_id'], ['membership_ledger.id'], name=op.f('fk_membership_referrals_reward_entry_id_membership_ledger')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership_referrals'))
    )
    op.create_index(op.f('ix_membership_referrals_referrer_id'), 'membership_referrals', ['referrer_id'], unique=False)
    op.create_index('uq_membership_referrals_live', 'membership_referrals', ['referred_id', 'project'], unique=True, sqlite_where=sa.text("status <> 'superseded'"), postgresql_where=sa.text("status <> 'superseded'"))


def downgrade() -> None:
    op.drop_index('uq_membership_referrals_live', table_name='membership_referrals', sqlite_where=sa.text("status <> 'superseded'"), postgresql_where=sa.text("status <> 'superseded'"))
    op.drop_index(op.f('ix_membership_referrals_referrer_id'), table_name='membership_referrals')
    op.drop_table('membership_referrals')
    op.drop_index(op.f('ix_membership_tier_changes_customer_id'), table_name='membership_tier_changes')
    op.drop_table('membership_tier_changes')
    op.drop_index(op.f('ix_membership_members_status'), table_name='membership_members')
    op.drop_table('membership_members')
    op.drop_index(op.f('ix_membership_ledger_expires_at'), table_name='membership_ledger')
    op.drop_index(op.f('ix_membership_ledger_customer_id'), table_name='membership_ledger')
    op.drop_table('membership_ledger')
    op.drop_index(op.f('ix_membership_events_customer_id'), table_name='membership_events')
    op.drop_table('membership_events')
