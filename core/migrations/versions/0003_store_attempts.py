"""count store attempts, so a store that keeps crashing ends instead of looping

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch_op:
        batch_op.add_column(
            sa.Column("store_attempts", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch_op:
        batch_op.drop_column("store_attempts")
