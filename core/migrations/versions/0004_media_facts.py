"""requested resolution and length; measured media facts of the stored video, and its
derived images

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("resolution", sa.String(length=10)),
    ("duration_seconds", sa.Integer()),
    ("video_duration_ms", sa.Integer()),
    ("video_width", sa.Integer()),
    ("video_height", sa.Integer()),
    ("video_fps", sa.Float()),
    ("video_codec", sa.String(length=32)),
    ("video_has_audio", sa.Boolean()),
    ("thumbnail_key", sa.String(length=300)),
    ("spritesheet_key", sa.String(length=300)),
)


def upgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch_op:
        for name, kind in _COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("video_tasks") as batch_op:
        for name, _ in reversed(_COLUMNS):
            batch_op.drop_column(name)
