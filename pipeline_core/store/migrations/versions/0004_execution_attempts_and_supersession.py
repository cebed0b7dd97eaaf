"""execution attempts and supersession (one owner per execution)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_job_execution_attempt",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(length=100), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=100), nullable=False),
        sa.Column("owner_instance", sa.String(length=200), nullable=True),
        sa.Column("start_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column(
            "processed_records", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("failed_records", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["pipeline_job_execution.execution_id"],
            name=op.f("fk_pipeline_job_execution_attempt_execution_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_job_execution_attempt")),
        sa.UniqueConstraint("execution_id", "attempt", name="uq_attempt_execution_attempt"),
    )
    with op.batch_alter_table("pipeline_job_execution", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("superseded_by", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("resumed_from_execution", sa.String(length=100), nullable=True)
        )
        batch_op.add_column(sa.Column("resumed_from_checkpoint", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_job_execution", schema=None) as batch_op:
        batch_op.drop_column("resumed_from_checkpoint")
        batch_op.drop_column("resumed_from_execution")
        batch_op.drop_column("superseded_by")
        batch_op.drop_column("attempt")
    op.drop_table("pipeline_job_execution_attempt")
