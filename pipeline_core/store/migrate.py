"""Schema migrations (Alembic, shipped in the package) and the schema-version check."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from pipeline_core.errors import SchemaError
from pipeline_core.store.engine import safe_url

__all__ = [
    "SchemaError",
    "alembic_config",
    "check_schema",
    "check_server",
    "compare_server_default",
    "current_revision",
    "head_revision",
    "upgrade",
]

#: SELECT … FOR UPDATE SKIP LOCKED, which claims and cron firing rely on, arrived in
#: MariaDB 10.6 and MySQL 8.0.1.
MIN_MARIADB = (10, 6)
MIN_MYSQL = (8, 0, 1)

# How MySQL/MariaDB reflect the defaults the models write as now() / true / false.
_SAME_DEFAULT = {
    "now()": {"current_timestamp()", "current_timestamp", "current_timestamp(6)", "now()"},
    "true": {"1", "true"},
    "false": {"0", "false"},
}


def compare_server_default(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic's server-default comparison, told that MySQL/MariaDB spell ``now()`` as
    ``current_timestamp(6)`` and ``true`` as ``1``; None (Alembic decides) elsewhere."""
    if context.dialect.name not in ("mysql", "mariadb") or rendered_metadata_default is None:
        return None
    inspected = (inspected_default or "").strip("'\"").lower()
    same = _SAME_DEFAULT.get(rendered_metadata_default.strip("'\"").lower())
    if same is None:
        return None
    return inspected not in same


def skip_locked_supported(is_mariadb: bool, version: tuple[int, ...]) -> bool:
    return tuple(version) >= (MIN_MARIADB if is_mariadb else MIN_MYSQL)


def check_server(engine: Engine) -> None:
    """Refuse a MySQL/MariaDB server too old for ``SKIP LOCKED`` (it would fail at the
    first claim with a syntax error, or worse, a server that ignored it would hand one
    execution to two instances)."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return
    with engine.connect():  # the dialect learns the server version on first connect
        pass
    dialect: Any = engine.dialect
    version = tuple(dialect.server_version_info or ())
    if skip_locked_supported(dialect.is_mariadb, version):
        return
    where = safe_url(engine.url.render_as_string(hide_password=False))
    found = ".".join(str(v) for v in version)
    need = "MariaDB ≥ 10.6" if dialect.is_mariadb else "MySQL ≥ 8.0.1"
    raise SchemaError(
        f"the metadata database {where} runs {'MariaDB' if dialect.is_mariadb else 'MySQL'} "
        f"{found}; claims and schedules need SELECT … FOR UPDATE SKIP LOCKED: use {need}"
    )


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "pipeline_core.store:migrations")
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Create or upgrade the schema; returns (revision before, revision after)."""
    check_server(engine)
    before = current_revision(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, current_revision(engine) or ""


def check_schema(engine: Engine) -> None:
    """Raise SchemaError (saying which command to run) unless the schema is at head."""
    check_server(engine)
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    where = safe_url(engine.url.render_as_string(hide_password=False))
    if current is None:
        raise SchemaError(
            f"the metadata database {where} has no schema yet: run `pipeline-run db upgrade`"
        )
    raise SchemaError(
        f"the metadata database {where} is at schema revision {current}, this pipeline-core "
        f"needs {head}: run `pipeline-run db upgrade`"
    )
