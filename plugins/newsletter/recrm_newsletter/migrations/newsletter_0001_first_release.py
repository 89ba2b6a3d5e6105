"""The newsletter plugin's tables as the first release created them: saved segments,
static lists, publications, sends, the outbox (recipients), suppressions and bounces
(they need the core's customers, and the erasure column of core_0006).

Revision ID: newsletter_0001
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = 'newsletter_0001'
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = ('newsletter',)
depends_on: str | None = "core_0006"


def upgrade() -> None:
    op.create_table('newsletter_bounces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('address_hash', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletter_bounces'))
    )
    with op.batch_alter_table('newsletter_bounces', schema=None) as batch_op:
        batch_op.create_index('ix_newsletter_bounces_channel_address_hash_at', ['channel', 'address_hash', 'at'], unique=False)

    op.create_table('newsletter_lists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletter_lists')),
    sa.UniqueConstraint('name', name=op.f('uq_newsletter_lists_name'))
    )
    op.create_table('newsletter_publications',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_newsletter_publications'))
    )
    op.create_table('newsletter_segments',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_newsletter_segments'))
    )
    op.create_table('newsletter_suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('address_hash', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletter_suppressions')),
    sa.UniqueConstraint('channel', 'address_hash', name=op.f('uq_newsletter_suppressions_channel_address_hash'))
    )
    op.create_table('newsletter_list_members',
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_newsletter_list_members_customer_id_customers')),
    sa.ForeignKeyConstraint(['list_id'], ['newsletter_lists.id'], name=op.f('fk_newsletter_list_members_list_id_newsletter_lists')),
    sa.PrimaryKeyConstraint('list_id', 'customer_id', name=op.f('pk_newsletter_list_members'))
    )
    with op.batch_alter_table('newsletter_list_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_newsletter_list_members_customer_id'), ['customer_id'], unique=False)

    op.create_table('newsletter_sends',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('publication', sa.String(length=64), nullable=True),
    sa.Column('issue_number', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('segment', sa.String(length=64), nullable=True),
    sa.Column('list_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('audience_after', sa.Integer(), nullable=False),
    sa.Column('audience_done', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['newsletter_lists.id'], name=op.f('fk_newsletter_sends_list_id_newsletter_lists')),
    sa.ForeignKeyConstraint(['publication'], ['newsletter_publications.code'], name=op.f('fk_newsletter_sends_publication_newsletter_publications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletter_sends')),
    sa.UniqueConstraint('name', name=op.f('uq_newsletter_sends_name')),
    sa.UniqueConstraint('publication', 'issue_number', name=op.f('uq_newsletter_sends_publication_issue_number'))
    )
    with op.batch_alter_table('newsletter_sends', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_newsletter_sends_state'), ['state'], unique=False)

    op.create_table('newsletter_recipients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('send_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('lease_owner', sa.String(length=36), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('transport', sa.String(length=32), nullable=True),
    sa.Column('detail', sa.String(length=300), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('bounced', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_newsletter_recipients_customer_id_customers')),
    sa.ForeignKeyConstraint(['send_id'], ['newsletter_sends.id'], name=op.f('fk_newsletter_recipients_send_id_newsletter_sends')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletter_recipients')),
    sa.UniqueConstraint('send_id', 'customer_id', 'channel', name=op.f('uq_newsletter_recipients_send_id_customer_id_channel'))
    )
    with op.batch_alter_table('newsletter_recipients', schema=None) as batch_op:
        batch_op.create_index('ix_newsletter_recipients_customer_id_channel_sent_at', ['customer_id', 'channel', 'sent_at'], unique=False)
        batch_op.create_index('ix_newsletter_recipients_send_id_state', ['send_id', 'state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('newsletter_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_newsletter_recipients_send_id_state')
        batch_op.drop_index('ix_newsletter_recipients_customer_id_channel_sent_at')

    op.drop_table('newsletter_recipients')
    with op.batch_alter_table('newsletter_sends', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_newsletter_sends_state'))

    op.drop_table('newsletter_sends')
    with op.batch_alter_table('newsletter_list_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_newsletter_list_members_customer_id'))

    op.drop_table('newsletter_list_members')
    op.drop_table('newsletter_suppressions')
    op.drop_table('newsletter_segments')
    op.drop_table('newsletter_publications')
    op.drop_table('newsletter_lists')
    with op.batch_alter_table('newsletter_bounces', schema=None) as batch_op:
        batch_op.drop_index('ix_newsletter_bounces_channel_address_hash_at')

    op.drop_table('newsletter_bounces')
