"""Schema migrations (Alembic, shipped in the package) and the schema-version check."""

from __future__ import annotations

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
    "current_revision",
    "head_revision",
    "upgrade",
]


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
    before = current_revision(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, current_revision(engine) or ""


def check_schema(engine: Engine) -> None:
    """Raise SchemaError (saying which command to run) unless the schema is at head."""
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
