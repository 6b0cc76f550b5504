"""accounts.active_tasks: how many of the user's tasks are active, kept by the create's
conditional UPDATE and by every settlement, so the per-user limit needs no count(*)

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The active statuses (schemas.status.ACTIVE) as they were when this ran.
_ACTIVE = "('queued', 'submitting', 'running', 'storing')"


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("active_tasks", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE accounts SET active_tasks = ("  # noqa: S608
        " SELECT count(*) FROM video_tasks t"
        ' WHERE t.client_id = accounts.client_id AND t."user" = accounts."user"'
        f" AND t.status IN {_ACTIVE})"
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("active_tasks")
