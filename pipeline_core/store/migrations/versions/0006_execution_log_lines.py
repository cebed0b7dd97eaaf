"""execution log lines: a bounded tail per execution

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# as 0005 made them for the older tables: LONGTEXT, DATETIME(6), utf8mb4 binary
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "pipeline_job_execution_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("log_time", Timestamp, nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("logger", sa.String(length=200), nullable=False),
        sa.Column("message", LongText, nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["pipeline_job_execution.execution_id"],
            name=op.f("fk_pipeline_job_execution_log_execution_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_job_execution_log")),
        sa.UniqueConstraint("execution_id", "seq", name="uq_log_execution_seq"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    op.drop_table("pipeline_job_execution_log")
