"""task_activity: each task's history (transitions, submit calls, polls) for the console

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import schemas.tables

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new table only: additive, so the previous release keeps running during a rollout.
    op.create_table(
        "task_activity",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", schemas.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("task_activity", schema=None) as batch_op:
        batch_op.create_index("ix_task_activity_task", ["task_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_activity", schema=None) as batch_op:
        batch_op.drop_index("ix_task_activity_task")
    op.drop_table("task_activity")
