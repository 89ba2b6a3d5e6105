"""A registration may enter a state again (converted, back to confirmed by a cancelled
deal, converted again): a transition is unique per registration, state and time.

Revision ID: channels_0004
Revises: channels_0003
"""

from __future__ import annotations

from alembic import op

revision: str = "channels_0004"
down_revision: str | None = "channels_0003"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("channels_transitions") as batch:
        batch.drop_constraint("uq_channels_transitions_registration_id_state", type_="unique")
        batch.create_unique_constraint("uq_channels_transitions_registration_id_state_at",
                                       ["registration_id", "state", "at"])


def downgrade() -> None:
    # Re-entries are kept only as their first: the older rule holds one per state.
    op.execute("DELETE FROM channels_transitions WHERE id NOT IN (SELECT MIN(id) FROM "
               "channels_transitions GROUP BY registration_id, state)")
    with op.batch_alter_table("channels_transitions") as batch:
        batch.drop_constraint("uq_channels_transitions_registration_id_state_at",
                              type_="unique")
        batch.create_unique_constraint("uq_channels_transitions_registration_id_state",
                                       ["registration_id", "state"])
