"""indexes the operator console reads by: a user's tasks, the recent completions

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Indexes only: additive, the previous release keeps running during a rollout. None on
    # task_activity.at: that table takes a row per poll; its recent rows are found by id.
    with op.batch_alter_table("video_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_video_tasks_user_id", ["user", "id"], unique=False)
        batch_op.create_index("ix_video_tasks_completed_at", ["completed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("video_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_video_tasks_completed_at")
        batch_op.drop_index("ix_video_tasks_user_id")
