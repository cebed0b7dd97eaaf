"""job definitions remember the folder of their job file

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# as 0005 made the other long strings: LONGTEXT on MySQL/MariaDB
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    # the absolute folder a version's relative paths and functions resolve from; NULL
    # for a definition that came without a file (the API, Python)
    for table in ("pipeline_job_definition", "pipeline_job_definition_version"):
        op.add_column(table, sa.Column("base_dir", LongText, nullable=True))


def downgrade() -> None:
    for table in ("pipeline_job_definition", "pipeline_job_definition_version"):
        op.drop_column(table, "base_dir")
