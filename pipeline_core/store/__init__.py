"""The metadata database: job registry, execution records (and later checkpoints and
schedules), on SQLite by default or PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from pipeline_core.store.checkpoints import DbCheckpointRepository
from pipeline_core.store.engine import database_url, make_engine, safe_url
from pipeline_core.store.executions import ExecutionRecord, ExecutionStore, Transition
from pipeline_core.store.instances import InstanceRecord, InstanceStore
from pipeline_core.store.logs import LogStore
from pipeline_core.store.migrate import check_schema, upgrade
from pipeline_core.store.ownership import OwnershipStore
from pipeline_core.store.registry import ImportReport, JobDefinition, JobRegistry
from pipeline_core.store.schedules import Fired, ScheduleRecord, ScheduleStore

__all__ = [
    "DbCheckpointRepository",
    "ExecutionRecord",
    "ExecutionStore",
    "Fired",
    "ImportReport",
    "InstanceRecord",
    "InstanceStore",
    "JobDefinition",
    "JobRegistry",
    "LogStore",
    "MetadataStore",
    "ScheduleRecord",
    "ScheduleStore",
    "Transition",
]


def _create_sqlite(path: Path) -> None:
    """Create an SQLite file at the current schema atomically: migrate a temporary file,
    then rename it into place, so a process killed meanwhile never leaves a file without
    a schema (and two processes creating it at once both end with a good one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    engine = make_engine(f"sqlite:///{tmp}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    try:
        os.link(tmp, path)  # fails if another process created it first: keep that one
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


class MetadataStore:
    """The engine plus the repositories over it.

    :meth:`open` refuses a database whose schema is missing or out of date, saying to
    run ``pipeline-run db upgrade`` — except the embedded default SQLite file when it
    does not exist yet, which is created at the current schema (an embedded store needs
    no separate install step).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = JobRegistry(engine)
        self.executions = ExecutionStore(engine)
        self.checkpoints = DbCheckpointRepository(engine)
        self.schedules = ScheduleStore(engine)
        self.instances = InstanceStore(engine)
        self.ownership = OwnershipStore(engine, self.executions)
        self.logs = LogStore(engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def url(self) -> str:
        return safe_url(self.engine.url.render_as_string(hide_password=False))

    @classmethod
    def open(cls, url: str | None = None, *, check: bool = True) -> MetadataStore:
        resolved = database_url(url)
        parsed = make_url(resolved)
        brand_new_sqlite = (
            parsed.get_backend_name() == "sqlite"
            and bool(parsed.database)
            and parsed.database != ":memory:"
            and not Path(parsed.database or "").exists()
        )
        if brand_new_sqlite:
            _create_sqlite(Path(parsed.database or ""))
        engine = make_engine(resolved)
        if check and not brand_new_sqlite:
            check_schema(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()
