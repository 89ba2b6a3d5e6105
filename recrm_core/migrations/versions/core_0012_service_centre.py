"""The service centre: a case's intake channel, level clock and incident; incidents;
the routing round robin.

Revision ID: core_0012
Revises: core_0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recrm_core.db

revision: str = "core_0012"
down_revision: str | None = "core_0011"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | str | None = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("opened_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", recrm_core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_incidents_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(op.f("ix_incidents_project_id"), "incidents", ["project_id"], unique=False)
    op.create_table(
        "routing_turns",
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("last_staff", sa.String(length=64), nullable=False),
        sa.Column("updated_at", recrm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("department", name=op.f("pk_routing_turns")),
    )
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=16), server_default="other",
                                   nullable=False))
        batch.add_column(sa.Column("level_since", recrm_core.db.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_cases_incident_id"), ["incident_id"], unique=False)
        batch.create_foreign_key(batch.f("fk_cases_incident_id_incidents"), "incidents",
                                 ["incident_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint(batch.f("fk_cases_incident_id_incidents"), type_="foreignkey")
        batch.drop_index(batch.f("ix_cases_incident_id"))
        batch.drop_column("incident_id")
        batch.drop_column("level_since")
        batch.drop_column("channel")
    op.drop_table("routing_turns")
    op.drop_index(op.f("ix_incidents_project_id"), table_name="incidents")
    op.drop_table("incidents")
