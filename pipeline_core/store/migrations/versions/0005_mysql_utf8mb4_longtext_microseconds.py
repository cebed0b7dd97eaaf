"""MySQL/MariaDB: utf8mb4 with binary collation, LONGTEXT, DATETIME(6)

Nothing changes on SQLite or PostgreSQL. On MySQL/MariaDB, tables made by 0001 to 0004
took the database's default character set and collation (often latin1 or a
case-insensitive one: ``orders`` and ``Orders`` would be one job), TEXT (64 KiB at most:
a long definition or stack trace would be cut or refused) and DATETIME (whole seconds:
heartbeats, "completed since" and newest-first orderings need the microseconds the other
databases keep). One ALTER per table, so a large database is copied once per table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NOW = "DEFAULT CURRENT_TIMESTAMP(6)"

# table → [(column, new definition)]; nullability and defaults as in 0001 to 0004
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "pipeline_job_definition": [
        ("dag_definition", "LONGTEXT NOT NULL"),
        ("description", "LONGTEXT NULL"),
        ("create_time", f"DATETIME(6) NOT NULL {NOW}"),
        ("update_time", f"DATETIME(6) NOT NULL {NOW}"),
    ],
    "pipeline_job_definition_version": [
        ("dag_definition", "LONGTEXT NOT NULL"),
        ("description", "LONGTEXT NULL"),
        ("create_time", f"DATETIME(6) NOT NULL {NOW}"),
    ],
    "pipeline_job_execution": [
        ("error_message", "LONGTEXT NULL"),
        ("error_stack_trace", "LONGTEXT NULL"),
        ("start_time", "DATETIME(6) NOT NULL"),
        ("end_time", "DATETIME(6) NULL"),
        ("heartbeat_time", "DATETIME(6) NULL"),
        ("scheduled_time", "DATETIME(6) NULL"),
    ],
    "pipeline_job_execution_transition": [
        ("message", "LONGTEXT NULL"),
        ("transition_time", f"DATETIME(6) NOT NULL {NOW}"),
    ],
    "pipeline_job_execution_attempt": [
        ("end_reason", "LONGTEXT NULL"),
        ("start_time", f"DATETIME(6) NOT NULL {NOW}"),
        ("end_time", "DATETIME(6) NULL"),
    ],
    "pipeline_checkpoint": [
        ("create_time", f"DATETIME(6) NOT NULL {NOW}"),
        ("complete_time", "DATETIME(6) NULL"),
    ],
    "pipeline_job_config": [
        ("config_value", "LONGTEXT NOT NULL"),
        ("description", "LONGTEXT NULL"),
        ("create_time", f"DATETIME(6) NOT NULL {NOW}"),
        ("update_time", f"DATETIME(6) NOT NULL {NOW}"),
    ],
    "pipeline_job_schedule": [
        ("dependencies", "LONGTEXT NULL"),
        ("last_trigger_time", "DATETIME(6) NULL"),
        ("next_trigger_time", "DATETIME(6) NULL"),
        ("create_time", f"DATETIME(6) NOT NULL {NOW}"),
    ],
    "pipeline_runner_instance": [
        ("started_time", f"DATETIME(6) NOT NULL {NOW}"),
        ("heartbeat_time", f"DATETIME(6) NOT NULL {NOW}"),
        ("stopped_time", "DATETIME(6) NULL"),
    ],
}


# The VARCHAR foreign keys onto pipeline_job_execution.execution_id: its character set
# changes on both sides, which MariaDB refuses while a constraint joins them (error 1833,
# even with foreign_key_checks off), so they are dropped and made again around it.
EXECUTION_ID_FKS = [
    "pipeline_job_execution_transition",
    "pipeline_job_execution_attempt",
    "pipeline_checkpoint",
]


def _fk_name(table: str) -> str:
    return f"fk_{table}_execution_id"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    for table in EXECUTION_ID_FKS:
        # re-run after a failure half-way (MySQL DDL is not transactional): drop only
        # what is there
        present = {fk["name"] for fk in sa.inspect(bind).get_foreign_keys(table)}
        if _fk_name(table) in present:
            op.drop_constraint(_fk_name(table), table, type_="foreignkey")
    for table, columns in COLUMNS.items():
        specs = ["CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"]
        specs += [f"MODIFY `{name}` {definition}" for name, definition in columns]
        op.execute(f"ALTER TABLE `{table}` " + ", ".join(specs))
    for table in EXECUTION_ID_FKS:
        op.create_foreign_key(
            _fk_name(table), table, "pipeline_job_execution", ["execution_id"], ["execution_id"]
        )


def downgrade() -> None:
    # The 0004 code reads and writes the wider columns as well; narrowing them back could
    # only cut data, so a downgrade leaves them.
    pass
