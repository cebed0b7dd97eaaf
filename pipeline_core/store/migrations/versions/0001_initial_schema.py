"""initial schema: the five tables of the original design, job version history and
execution transitions

Revision ID: 0001
Revises:
Create Date: 2026-11-27 22:59:47.912181
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "pipeline_job_definition",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_name", sa.String(length=200), nullable=False),
        sa.Column("job_type", sa.String(length=50), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("dag_definition", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("create_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("update_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_job_definition")),
        sa.UniqueConstraint("job_name", name=op.f("uq_pipeline_job_definition_job_name")),
    )
    with op.batch_alter_table("pipeline_job_definition", schema=None) as batch_op:
        batch_op.create_index("idx_job_definition_enabled", ["enabled"], unique=False)
        batch_op.create_index("idx_job_definition_job_name", ["job_name"], unique=False)
        batch_op.create_index("idx_job_definition_job_type", ["job_type"], unique=False)

    op.create_table(
        "pipeline_job_config",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("config_key", sa.String(length=200), nullable=False),
        sa.Column("config_value", sa.Text(), nullable=False),
        sa.Column("config_type", sa.String(length=50), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("create_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("update_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["pipeline_job_definition.id"], name=op.f("fk_pipeline_job_config_job_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_job_config")),
        sa.UniqueConstraint(
            "job_id", "config_key", name=op.f("uq_pipeline_job_config_job_id_config_key")
        ),
    )
    with op.batch_alter_table("pipeline_job_config", schema=None) as batch_op:
        batch_op.create_index("idx_job_config", ["job_id"], unique=False)

    op.create_table(
        "pipeline_job_definition_version",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("job_type", sa.String(length=50), nullable=False),
        sa.Column("dag_definition", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("definition_hash", sa.String(length=64), nullable=False),
        sa.Column("create_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["pipeline_job_definition.id"],
            name=op.f("fk_pipeline_job_definition_version_job_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_job_definition_version")),
        sa.UniqueConstraint(
            "job_id", "version", name=op.f("uq_pipeline_job_definition_version_job_id_version")
        ),
    )
    op.create_table(
        "pipeline_job_execution",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("execution_id", sa.String(length=100), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_name", sa.String(length=200), nullable=False),
        sa.Column("job_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("processed_records", sa.BigInteger(), server_default=sa.text("0"), nullable=True),
        sa.Column("failed_records", sa.BigInteger(), server_default=sa.text("0"), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_stack_trace", sa.Text(), nullable=True),
        sa.Column("checkpoint_path", sa.String(length=500), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=True),
        sa.Column("triggered_by", sa.String(length=100), nullable=True),
        sa.Column("owner_instance", sa.String(length=200), nullable=True),
        sa.Column("heartbeat_time", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["pipeline_job_definition.id"],
            name=op.f("fk_pipeline_job_execution_job_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_job_execution")),
        sa.UniqueConstraint("execution_id", name=op.f("uq_pipeline_job_execution_execution_id")),
    )
    with op.batch_alter_table("pipeline_job_execution", schema=None) as batch_op:
        batch_op.create_index("idx_execution_id", ["execution_id"], unique=False)
        batch_op.create_index("idx_execution_job_name", ["job_name"], unique=False)
        batch_op.create_index("idx_status", ["status"], unique=False)
        batch_op.create_index("idx_job_id_start_time", ["job_id", "start_time"], unique=False)

    op.create_table(
        "pipeline_job_schedule",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("schedule_type", sa.String(length=50), nullable=False),
        sa.Column("cron_expression", sa.String(length=100), nullable=True),
        sa.Column("event_topic", sa.String(length=200), nullable=True),
        sa.Column("dependencies", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_trigger_time", sa.DateTime(), nullable=True),
        sa.Column("next_trigger_time", sa.DateTime(), nullable=True),
        sa.Column("create_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["pipeline_job_definition.id"], name=op.f("fk_pipeline_job_schedule_job_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_job_schedule")),
        sa.UniqueConstraint("job_id", name=op.f("uq_pipeline_job_schedule_job_id")),
    )
    with op.batch_alter_table("pipeline_job_schedule", schema=None) as batch_op:
        batch_op.create_index(
            "idx_next_trigger",
            ["next_trigger_time"],
            unique=False,
            postgresql_where=sa.text("enabled = true"),
            sqlite_where=sa.text("enabled = 1"),
        )
        batch_op.create_index("idx_schedule_job", ["job_id"], unique=False)

    op.create_table(
        "pipeline_checkpoint",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("execution_id", sa.String(length=100), nullable=False),
        sa.Column("checkpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_type", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column(
            "state_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("storage_path", sa.String(length=500), nullable=True),
        sa.Column("storage_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("create_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("complete_time", sa.DateTime(), nullable=True),
        sa.Column("is_savepoint", sa.Boolean(), server_default=sa.text("false"), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["pipeline_job_execution.execution_id"],
            name=op.f("fk_pipeline_checkpoint_execution_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_checkpoint")),
        sa.UniqueConstraint(
            "execution_id",
            "checkpoint_id",
            name=op.f("uq_pipeline_checkpoint_execution_id_checkpoint_id"),
        ),
    )
    with op.batch_alter_table("pipeline_checkpoint", schema=None) as batch_op:
        batch_op.create_index("idx_create_time", ["create_time"], unique=False)
        batch_op.create_index(
            "idx_execution_checkpoint",
            ["execution_id", "checkpoint_id"],
            unique=False,
        )
        batch_op.create_index(
            "idx_savepoint",
            ["is_savepoint"],
            unique=False,
            postgresql_where=sa.text("is_savepoint = true"),
            sqlite_where=sa.text("is_savepoint = 1"),
        )

    op.create_table(
        "pipeline_job_execution_transition",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("execution_id", sa.String(length=100), nullable=False),
        sa.Column("from_status", sa.String(length=50), nullable=True),
        sa.Column("to_status", sa.String(length=50), nullable=False),
        sa.Column("transition_time", sa.DateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["pipeline_job_execution.execution_id"],
            name=op.f("fk_pipeline_job_execution_transition_execution_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_job_execution_transition")),
    )
    with op.batch_alter_table("pipeline_job_execution_transition", schema=None) as batch_op:
        batch_op.create_index("idx_transition_execution", ["execution_id", "id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("pipeline_job_execution_transition", schema=None) as batch_op:
        batch_op.drop_index("idx_transition_execution")

    op.drop_table("pipeline_job_execution_transition")
    with op.batch_alter_table("pipeline_checkpoint", schema=None) as batch_op:
        batch_op.drop_index(
            "idx_savepoint",
            postgresql_where=sa.text("is_savepoint = true"),
            sqlite_where=sa.text("is_savepoint = 1"),
        )
        batch_op.drop_index("idx_create_time")

    op.drop_table("pipeline_checkpoint")
    with op.batch_alter_table("pipeline_job_schedule", schema=None) as batch_op:
        batch_op.drop_index("idx_schedule_job")
        batch_op.drop_index(
            "idx_next_trigger",
            postgresql_where=sa.text("enabled = true"),
            sqlite_where=sa.text("enabled = 1"),
        )

    op.drop_table("pipeline_job_schedule")
    with op.batch_alter_table("pipeline_job_execution", schema=None) as batch_op:
        batch_op.drop_index("idx_status")
        batch_op.drop_index("idx_execution_job_name")
        batch_op.drop_index("idx_execution_id")

    op.drop_table("pipeline_job_execution")
    op.drop_table("pipeline_job_definition_version")
    with op.batch_alter_table("pipeline_job_config", schema=None) as batch_op:
        batch_op.drop_index("idx_job_config")

    op.drop_table("pipeline_job_config")
    with op.batch_alter_table("pipeline_job_definition", schema=None) as batch_op:
        batch_op.drop_index("idx_job_definition_job_type")
        batch_op.drop_index("idx_job_definition_job_name")
        batch_op.drop_index("idx_job_definition_enabled")

    op.drop_table("pipeline_job_definition")
