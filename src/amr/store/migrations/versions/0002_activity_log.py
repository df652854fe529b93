"""The activity log: one row per entry, with the columns its queries filter on.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_log",
        # Insertion order (SQLite's rowid), which orders entries of the same microsecond (Started
        # before its answer) and costs nothing to assign.
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_data_id", sa.String(128), nullable=False),
        sa.Column("event_timestamp", sa.String(32), nullable=False),
        sa.Column("operation_id", sa.String(128), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("resource_group", sa.String(128), nullable=False),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("resource_provider", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("caller", sa.String(256), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("activity_log_id", "activity_log", ["event_data_id"], unique=True)
    op.create_index("activity_log_time", "activity_log", ["event_timestamp", "seq"])
    op.create_index("activity_log_operation", "activity_log", ["operation_id"])
    op.create_index("activity_log_correlation", "activity_log", ["correlation_id"])


def downgrade() -> None:
    op.drop_table("activity_log")
