"""The directory (departments, their projects, staff), the append-only audit log and
the fingerprint of the database's key file.

Revision ID: core_0005
Revises: core_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recrm_core.db

revision: str = "core_0005"
down_revision: str | None = "core_0004"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("created_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_departments")),
    )
    op.create_table(
        "department_projects",
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["department"], ["departments.code"],
                                name=op.f("fk_department_projects_department_departments"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_department_projects_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("department", "project_id", name=op.f("pk_department_projects")),
    )
    op.create_index(op.f("ix_department_projects_project_id"), "department_projects",
                    ["project_id"], unique=False)
    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("manager", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("mobile", sa.String(length=32), nullable=True),
        sa.Column("left_at", recrm_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["department"], ["departments.code"],
                                name=op.f("fk_staff_department_departments")),
        sa.ForeignKeyConstraint(["manager"], ["staff.id"], name=op.f("fk_staff_manager_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
    )
    op.create_index(op.f("ix_staff_department"), "staff", ["department"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_staff", sa.String(length=64), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"], unique=False)
    op.create_index("ix_audit_log_customer_at", "audit_log", ["customer_id", "at"], unique=False)
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor_staff", "at"], unique=False)
    op.create_table(
        "key_fingerprints",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_key_fingerprints")),
    )


def downgrade() -> None:
    op.drop_table("key_fingerprints")
    op.drop_index("ix_audit_log_actor_at", table_name="audit_log")
    op.drop_index("ix_audit_log_customer_at", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_action"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_staff_department"), table_name="staff")
    op.drop_table("staff")
    op.drop_index(op.f("ix_department_projects_project_id"), table_name="department_projects")
    op.drop_table("department_projects")
    op.drop_table("departments")
