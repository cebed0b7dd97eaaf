"""checkpoint requests and savepoint names

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 23:13:14.682776
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_checkpoint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("savepoint_name", sa.String(length=200), nullable=True))
        batch_op.create_index("idx_checkpoint_job_status", ["job_name", "status"], unique=False)

    with op.batch_alter_table("pipeline_job_execution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkpoint_request", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_job_execution", schema=None) as batch_op:
        batch_op.drop_column("checkpoint_request")

    with op.batch_alter_table("pipeline_checkpoint", schema=None) as batch_op:
        batch_op.drop_index("idx_checkpoint_job_status")
        batch_op.drop_column("savepoint_name")
        batch_op.drop_column("job_name")
