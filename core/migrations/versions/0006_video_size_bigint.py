"""video_size as BIGINT: a stored video may be larger than 2 GiB

INTEGER holds at most 2,147,483,647 bytes; PostgreSQL refused a larger size at the move to
completed (SQLite stored it), so a big video could never complete on PostgreSQL.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch_op:
        batch_op.alter_column(
            "video_size", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch_op:
        batch_op.alter_column(
            "video_size", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True
        )
