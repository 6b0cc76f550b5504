"""store any task id the gateway gives: upstream_task_id up to 1000 characters

A longer id was accepted from the submit answer and then refused by PostgreSQL on the
move to running, orphaning a billed upstream task (the client refuses ids beyond 1000).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch_op:
        batch_op.alter_column(
            "upstream_task_id",
            existing_type=sa.String(length=200),
            type_=sa.String(length=1000),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch_op:
        batch_op.alter_column(
            "upstream_task_id",
            existing_type=sa.String(length=1000),
            type_=sa.String(length=200),
            existing_nullable=True,
        )
