"""Schema migrations (Alembic, shipped in the package) and the schema-version check.

Checking the schema — what every ``pipeline-run run`` does — needs no Alembic: the head is
read from the migration files' ``revision`` / ``down_revision`` lines and the current
revision from Alembic's ``alembic_version`` table. Importing Alembic took 0.37 s of a
one-record run's start-up; it is imported only to upgrade.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from pipeline_core.errors import SchemaError
from pipeline_core.store.engine import safe_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "pipeline_core.store:migrations")
    return cfg


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?([\w]+)", re.MULTILINE)


@cache
def head_revision() -> str:
    """The one revision no migration names as its ``down_revision``."""
    revisions, parents = set(), set()
    for script in files("pipeline_core.store.migrations").joinpath("versions").iterdir():
        if not script.name.endswith(".py"):
            continue
        found = dict((k, v) for k, v in _REVISION.findall(script.read_text("utf-8")))
        if "revision" in found:
            revisions.add(found["revision"])
            if found.get("down_revision") not in (None, "None"):
                parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise SchemaError(f"the shipped migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The schema revision Alembic recorded; None for a database without a schema."""
    with engine.connect() as conn:
        try:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError:  # no such table: nothing was ever migrated here
            return None
    if len(rows) > 1:
        raise SchemaError(f"alembic_version holds {len(rows)} revisions: {rows}")
    return str(rows[0][0]) if rows else None


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Create or upgrade the schema; returns (revision before, revision after)."""
    from alembic import command

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
