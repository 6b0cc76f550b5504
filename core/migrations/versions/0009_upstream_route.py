"""video_tasks.upstream_route: the catalogue route a task was submitted on

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: additive, and instant on PostgreSQL whatever the table's size.
    # A task submitted before it polls where it always did (its model's provider).
    with op.batch_alter_table("video_tasks") as batch:
        batch.add_column(
            sa.Column("upstream_route", sqlmodel.sql.sqltypes.AutoString(length=150), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch:
        batch.drop_column("upstream_route")
