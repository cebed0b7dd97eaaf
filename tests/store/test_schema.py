"""Migrations produce exactly the models; the runner refuses an out-of-date schema."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pipeline_core import SchemaError
from pipeline_core.store import MetadataStore
from pipeline_core.store.engine import make_engine
from pipeline_core.store.migrate import (
    compare_server_default,
    current_revision,
    head_revision,
    upgrade,
)
from pipeline_core.store.models import Base

TABLES = {
    "pipeline_job_definition",
    "pipeline_job_definition_version",
    "pipeline_job_execution",
    "pipeline_job_execution_transition",
    "pipeline_checkpoint",
    "pipeline_job_config",
    "pipeline_job_schedule",
}


def test_migrations_produce_exactly_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    assert upgrade(engine) == (None, head_revision())
    with engine.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("error")  # an index autogenerate cannot compare is a failure
        ctx = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "compare_server_default": compare_server_default},
        )
        assert compare_metadata(ctx, Base.metadata) == []
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_original_columns_and_constraints(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    insp = inspect(engine)
    cols = {c["name"] for c in insp.get_columns("pipeline_checkpoint")}
    assert cols >= {
        "id",
        "execution_id",
        "checkpoint_id",
        "checkpoint_type",
        "status",
        "state_data",
        "storage_path",
        "storage_size_bytes",
        "create_time",
        "complete_time",
        "is_savepoint",
    }
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("pipeline_checkpoint")}
    assert ("execution_id", "checkpoint_id") in uniques
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("pipeline_job_config")}
    assert ("job_id", "config_key") in uniques
    uniques = {
        tuple(u["column_names"]) for u in insp.get_unique_constraints("pipeline_job_schedule")
    }
    assert ("job_id",) in uniques
    state_type = next(
        c["type"] for c in insp.get_columns("pipeline_checkpoint") if c["name"] == "state_data"
    )
    expected = {"postgresql": "JSONB", "mysql": "LONGTEXT"}.get(engine.dialect.name, "JSON")
    assert type(state_type).__name__ == expected  # MariaDB's JSON is LONGTEXT + json_valid
    fks = {fk["referred_table"] for fk in insp.get_foreign_keys("pipeline_job_execution")}
    assert fks == {"pipeline_job_definition"}


def test_open_refuses_a_database_without_schema(db_url: str) -> None:
    make_engine(db_url).connect().close()  # the database exists, its schema does not
    with pytest.raises(SchemaError, match=r"has no schema yet: run `pipeline-run db upgrade`"):
        MetadataStore.open(db_url)


def test_open_refuses_an_older_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:  # pretend the database is from an older release
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(
        SchemaError, match=r"is at schema revision 0000, .* needs .*: run `pipeline-run db upgrade`"
    ):
        MetadataStore.open(db_url)


def test_embedded_default_is_created_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / '.pipeline' / 'pipeline.db'}"
    store = MetadataStore.open(url)
    assert current_revision(store.engine) == head_revision()
    store.close()


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    # check_schema reads the head without importing Alembic; Alembic must agree
    from alembic.script import ScriptDirectory

    from pipeline_core.store.migrate import alembic_config

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_checking_the_schema_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(make_engine(url))
    code = (
        "import sys; from pipeline_core.store import MetadataStore; "
        f"MetadataStore.open({url!r}).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
