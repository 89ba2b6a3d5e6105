"""The survey tables as the first release created them (they need customers and cases).

Revision ID: survey_0001
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "survey_0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = ("survey",)
depends_on: str | None = "core_0001"


def upgrade() -> None:
    op.create_table('survey_definitions',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_survey_definitions'))
    )
    op.create_table('survey_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('survey_key', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('token', sa.String(length=48), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=True),
    sa.Column('unit', sa.String(length=64), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('months_after', sa.Integer(), nullable=True),
    sa.Column('year', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transport', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_survey_invitations_case_id_cases')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_survey_invitations_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_invitations')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_survey_invitations_dedupe_key')),
    sa.UniqueConstraint('token', name=op.f('uq_survey_invitations_token'))
    )
    op.create_index(op.f('ix_survey_invitations_customer_id'), 'survey_invitations', ['customer_id'], unique=False)
    op.create_index(op.f('ix_survey_invitations_project'), 'survey_invitations', ['project'], unique=False)
    op.create_index('ix_survey_invitations_status_due', 'survey_invitations', ['status', 'due_at'], unique=False)
    op.create_index(op.f('ix_survey_invitations_survey_key'), 'survey_invitations', ['survey_key'], unique=False)
    op.create_table('survey_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invitation_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('survey_key', sa.String(length=64), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_month', sa.String(length=7), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_survey_answers_case_id_cases')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_survey_answers_customer_id_customers')),
    sa.ForeignKeyConstraint(['invitation_id'], ['survey_invitations.id'], name=op.f('fk_survey_answers_invitation_id_survey_invitations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_answers')),
    sa.UniqueConstraint('invitation_id', name=op.f('uq_survey_answers_invitation_id'))
    )
    op.create_index(op.f('ix_survey_answers_answered_at'), 'survey_answers', ['answered_at'], unique=False)
    op.create_index(op.f('ix_survey_answers_customer_id'), 'survey_answers', ['customer_id'], unique=False)
    op.create_table('survey_scores',
    sa.Column('answer_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=True),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('scale_max', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['answer_id'], ['survey_answers.id'], name=op.f('fk_survey_scores_answer_id_survey_answers')),
    sa.PrimaryKeyConstraint('answer_id', 'question_id', name=op.f('pk_survey_scores'))
    )
    op.create_index('ix_survey_scores_role_answer', 'survey_scores', ['role', 'answer_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_survey_scores_role_answer', table_name='survey_scores')
    op.drop_table('survey_scores')
    op.drop_index(op.f('ix_survey_answers_customer_id'), table_name='survey_answers')
    op.drop_index(op.f('ix_survey_answers_answered_at'), table_name='survey_answers')
    op.drop_table('survey_answers')
    op.drop_index(op.f('ix_survey_invitations_survey_key'), table_name='survey_invitations')
    op.drop_index('ix_survey_invitations_status_due', table_name='survey_invitations')
    op.drop_index(op.f('ix_survey_invitations_project'), table_name='survey_invitations')
    op.drop_index(op.f('ix_survey_invitations_customer_id'), table_name='survey_invitations')
    op.drop_table('survey_invitations')
    op.drop_table('survey_definitions')
