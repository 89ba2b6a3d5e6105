"""Follow-up tasks and the public pool (公海).

Revision ID: core_0011
Revises: core_0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recrm_core.db

revision: str = "core_0011"
down_revision: str | None = "core_0010"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None


def upgrade() -> None:
    op.add_column("customer_projects", sa.Column(
        "owner_since", recrm_core.db.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("owner_staff", sa.String(length=64), nullable=False),
        sa.Column("due_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=True),
        sa.Column("rule_key", sa.String(length=128), nullable=True),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", recrm_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_tasks_customer_id_customers")),
        sa.ForeignKeyConstraint(["interaction_id"], ["interactions.id"],
                                name=op.f("fk_tasks_interaction_id_interactions"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_tasks_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("rule_key", name=op.f("uq_tasks_rule_key")),
    )
    op.create_index(op.f("ix_tasks_project_id"), "tasks", ["project_id"], unique=False)
    op.create_index("ix_tasks_owner_staff_status_due_at", "tasks",
                    ["owner_staff", "status", "due_at"], unique=False)
    op.create_index("ix_tasks_customer_project_status", "tasks",
                    ["customer_id", "project_id", "status"], unique=False)
    op.create_index("ix_tasks_status_due_at", "tasks", ["status", "due_at"], unique=False)
    op.create_table(
        "pool_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("staff", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("pooled_at", recrm_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("actor_staff", sa.String(length=64), nullable=True),
        sa.Column("at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_pool_events_customer_id_customers")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_pool_events_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_events")),
    )
    op.create_index("ix_pool_events_customer_project_at", "pool_events",
                    ["customer_id", "project_id", "at"], unique=False)
    op.create_index("ix_pool_events_project_at", "pool_events", ["project_id", "at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_pool_events_project_at", table_name="pool_events")
    op.drop_index("ix_pool_events_customer_project_at", table_name="pool_events")
    op.drop_table("pool_events")
    op.drop_index("ix_tasks_status_due_at", table_name="tasks")
    op.drop_index("ix_tasks_customer_project_status", table_name="tasks")
    op.drop_index("ix_tasks_owner_staff_status_due_at", table_name="tasks")
    op.drop_index(op.f("ix_tasks_project_id"), table_name="tasks")
    op.drop_table("tasks")
    with op.batch_alter_table("customer_projects") as batch:
        batch.drop_column("owner_since")
