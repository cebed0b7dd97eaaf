"""scheduler, executor control and runner instances

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 00:40:43.436916
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_runner_instance",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("instance_name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("heartbeat_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("stopped_time", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runner_instance")),
        sa.UniqueConstraint(
            "instance_name", name=op.f("uq_pipeline_runner_instance_instance_name")
        ),
    )
    with op.batch_alter_table("pipeline_job_execution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("control_request", sa.String(length=50), nullable=True))
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("scheduled_time", sa.DateTime(), nullable=True))

    with op.batch_alter_table("pipeline_job_schedule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("event_trigger", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column(
                "event_config",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_job_schedule", schema=None) as batch_op:
        batch_op.drop_column("event_config")
        batch_op.drop_column("event_trigger")
        batch_op.drop_column("timezone")

    with op.batch_alter_table("pipeline_job_execution", schema=None) as batch_op:
        batch_op.drop_column("scheduled_time")
        batch_op.drop_column("paused")
        batch_op.drop_column("control_request")

    op.drop_table("pipeline_runner_instance")
