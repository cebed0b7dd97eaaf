"""JobRegistry: versioned job definitions in the metadata database.

``pipeline_job_definition`` holds one row per job (the unique ``job_name`` and its latest
version); ``pipeline_job_definition_version`` keeps every version. ``update`` locks the
job's row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite transactions start with
``BEGIN IMMEDIATE``), so concurrent updates from several processes queue up: no version
number is used twice and no update is lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline_core.config.converter import structure
from pipeline_core.errors import ConfigError, JobAlreadyExists, JobNotFound, Problem
from pipeline_core.model.dependencies import (
    check_dependencies,
    dependency_order,
    upstream_jobs,
)
from pipeline_core.model.job import JobConfig, PipelineJob
from pipeline_core.model.loader import checked, job_from_dict, load_job_file
from pipeline_core.model.schedule import ScheduleConfig
from pipeline_core.store import models as m
from pipeline_core.store.job_config import config_field, decode_value, encode_value
from pipeline_core.store.schedules import dependency_graph, upsert_schedule
from pipeline_core.store.serialize import dag_hash, dag_to_yaml, job_to_dag

__all__ = ["ImportReport", "JobDefinition", "JobRegistry", "job_files"]

JOB_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def job_files(directory: Path) -> list[Path]:
    """The job files of ``directory``, sorted (not its subdirectories)."""
    return [
        p
        for p in sorted(directory.iterdir())
        if p.suffix.lower() in JOB_FILE_SUFFIXES and p.is_file()
    ]


@attrs.frozen(kw_only=True)
class JobDefinition:
    """One version of a registered job (the original design's JobDefinition)."""

    id: int
    job_name: str
    job_type: str
    version: int
    latest_version: int
    dag_definition: dict[str, Any]
    description: str | None
    enabled: bool
    create_time: dt.datetime
    update_time: dt.datetime
    created_by: str | None
    updated_by: str | None
    #: Typed overrides from pipeline_job_config, by key as stored.
    config: dict[str, Any] = attrs.field(factory=dict)
    #: The absolute folder of the job file this version came from (None: registered
    #: without a file, through the API or from Python).
    base_dir: str | None = None

    def effective_dag(self) -> dict[str, Any]:
        """The definition with the per-job config rows applied to its ``config``."""
        dag = dict(self.dag_definition)
        cfg = dict(dag.get("config") or {})
        for key, value in self.config.items():
            cfg[config_field(key)] = value
        dag["config"] = cfg
        return dag

    def to_job(self, default_dir: str | None = None) -> PipelineJob:
        """A runnable PipelineJob of this version, config overrides applied. Its relative
        paths and functions resolve from its job file's folder; a definition without one
        resolves from ``default_dir`` (``serve --jobs DIR``; None: the working directory)."""
        return job_from_dict(
            self.effective_dag(), base_dir=self.base_dir or default_dir, origin=self.job_name
        )


@attrs.frozen
class ImportReport:
    added: list[str] = attrs.field(factory=list)
    updated: list[str] = attrs.field(factory=list)
    unchanged: list[str] = attrs.field(factory=list)
    failed: dict[str, str] = attrs.field(factory=dict)


#: The checks a definition passes before it is stored (raises ConfigError).
Validator = Callable[[PipelineJob], None]


class JobRegistry:
    """Register, version, enable/disable, import and export jobs.

    Every way a definition comes in — ``register``, ``update``, ``import_directory``,
    hence the CLI, ``serve --jobs`` and the API — runs the same checks before anything is
    stored: the model (fields, names), then :attr:`validator` (set by whoever knows the
    installed connectors: components, every config field, functions), then, in the
    storing transaction, the schedule (dependencies on registered jobs, no cycles).
    The dependency rule also runs with the validator, so that one error lists every
    problem of a definition (``model/loader.checked``).
    """

    def __init__(self, engine: Engine, validator: Validator | None = None) -> None:
        self.engine = engine
        self.validator = validator

    def _checked(
        self, job: PipelineJob | dict[str, Any], base_dir: str | None
    ) -> tuple[dict[str, Any], str | None]:
        """The definition to store and the folder to store with it: a job's own
        ``base_dir`` (a job file's folder); none for a dict, whose ``base_dir`` (serve's
        ``--jobs DIR``) only checks it — a caller of the API cannot name a folder for
        functions to be imported from."""
        # A dict goes through the model too: it is validated and normalised the same way,
        # so the same job always hashes the same however it was written.
        if isinstance(job, dict):
            obj = checked(lambda: job_from_dict(job, base_dir=base_dir), self.validate)
        else:
            obj = job
            self.validate(obj)
        return job_to_dag(obj), None if isinstance(job, dict) else obj.base_dir

    def validate(self, job: PipelineJob, batch: Mapping[str, Sequence[str]] | None = None) -> None:
        """Every check but the storing transaction's: :attr:`validator` and the dependency
        rule against the registered jobs plus ``batch`` (jobs about to be registered with
        this one, by name → their upstream jobs); one ConfigError listing every problem."""
        errors: list[ConfigError] = []
        if self.validator is not None:
            try:
                self.validator(job)
            except ConfigError as exc:
                errors.append(exc)
        if upstream_jobs(job):
            with Session(self.engine) as session, session.begin():
                graph, known = dependency_graph(session)
            batch = batch or {}
            try:
                check_dependencies(job.name, job.schedule, {**graph, **batch}, known | set(batch))
            except ConfigError as exc:
                errors.append(exc)
        if errors:
            raise ConfigError.merge(errors)

    def load(
        self, path: str | Path, *, batch: Mapping[str, Sequence[str]] | None = None
    ) -> PipelineJob:
        """The job of a file, after :meth:`validate` — one ConfigError with every problem
        of the file, the model's and the validator's."""
        return checked(lambda: load_job_file(path), lambda job: self.validate(job, batch))

    # --- reading -------------------------------------------------------------------

    def _row(self, session: Session, job_name: str, *, lock: bool = False) -> m.JobDefinition:
        stmt = select(m.JobDefinition).where(m.JobDefinition.job_name == job_name)
        if lock:
            stmt = stmt.with_for_update()
        row = session.execute(stmt).scalar_one_or_none()
        if row is None:
            raise JobNotFound(f"no job named {job_name!r} is registered")
        return row

    def _config_rows(self, session: Session, job_id: int) -> dict[str, Any]:
        rows = session.execute(
            select(m.JobConfigRow)
            .where(m.JobConfigRow.job_id == job_id)
            .order_by(m.JobConfigRow.config_key)
        ).scalars()
        return {r.config_key: decode_value(r.config_value, r.config_type) for r in rows}

    def _definition(
        self, session: Session, row: m.JobDefinition, version: m.JobDefinitionVersion | None = None
    ) -> JobDefinition:
        return JobDefinition(
            id=row.id,
            job_name=row.job_name,
            job_type=version.job_type if version else row.job_type,
            version=version.version if version else row.version,
            latest_version=row.version,
            dag_definition=orjson.loads(version.dag_definition if version else row.dag_definition),
            description=version.description if version else row.description,
            enabled=row.enabled,
            create_time=version.create_time if version else row.create_time,
            update_time=row.update_time,
            created_by=version.created_by if version else row.created_by,
            updated_by=row.updated_by,
            config=self._config_rows(session, row.id),
            base_dir=version.base_dir if version else row.base_dir,
        )

    def get(self, job_name: str, version: int | None = None) -> JobDefinition:
        """The latest version, or the given one (old versions stay readable)."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, job_name)
            if version is None or version == row.version:
                return self._definition(session, row)
            old = session.execute(
                select(m.JobDefinitionVersion).where(
                    m.JobDefinitionVersion.job_id == row.id,
                    m.JobDefinitionVersion.version == version,
                )
            ).scalar_one_or_none()
            if old is None:
                raise JobNotFound(
                    f"job {job_name!r} has no version {version} (versions 1 to {row.version})"
                )
            return self._definition(session, row, old)

    def versions(self, job_name: str) -> list[tuple[int, dt.datetime, str | None]]:
        """(version, created, created_by) for every version, oldest first."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, job_name)
            rows = session.execute(
                select(m.JobDefinitionVersion)
                .where(m.JobDefinitionVersion.job_id == row.id)
                .order_by(m.JobDefinitionVersion.version)
            ).scalars()
            return [(v.version, v.create_time, v.created_by) for v in rows]

    def list_all(self) -> list[JobDefinition]:
        with Session(self.engine) as session, session.begin():
            rows = session.execute(
                select(m.JobDefinition).order_by(m.JobDefinition.job_name)
            ).scalars()
            return [self._definition(session, r) for r in rows]

    # --- writing -------------------------------------------------------------------

    def register(
        self,
        job: PipelineJob | dict[str, Any],
        *,
        created_by: str | None = None,
        base_dir: str | None = None,
    ) -> JobDefinition:
        """Add a new job as version 1 (after every check; ``base_dir`` is where a dict's
        function references resolve from); JobAlreadyExists if the name is taken."""
        return self._insert(*self._checked(job, base_dir), created_by)

    def _insert(
        self, dag: dict[str, Any], folder: str | None, created_by: str | None
    ) -> JobDefinition:
        name = dag["name"]
        now = m.utcnow()
        try:
            with Session(self.engine) as session, session.begin():
                exists = session.execute(
                    select(m.JobDefinition.id).where(m.JobDefinition.job_name == name)
                ).first()
                if exists:
                    raise JobAlreadyExists(
                        f"a job named {name!r} is already registered (use update to add a version)"
                    )
                row = m.JobDefinition(
                    job_name=name,
                    job_type=dag["type"],
                    version=1,
                    dag_definition=orjson.dumps(dag).decode(),
                    description=dag.get("description"),
                    enabled=True,
                    create_time=now,
                    update_time=now,
                    created_by=created_by,
                    updated_by=created_by,
                    base_dir=folder,
                )
                session.add(row)
                session.flush()
                session.add(self._version_row(row, dag, folder, created_by, now))
                self._apply_schedule(session, row, dag, now)
                session.flush()
                return self._definition(session, row)
        except IntegrityError:
            # Another process registered the same name between our check and insert.
            raise JobAlreadyExists(
                f"a job named {name!r} is already registered (use update to add a version)"
            ) from None

    @staticmethod
    def _apply_schedule(
        session: Session, row: m.JobDefinition, dag: dict[str, Any], now: dt.datetime
    ) -> None:
        """A version with a ``schedule`` block sets the job's schedule (an API change to
        the schedule lasts until the next version that has one)."""
        if "schedule" in dag:
            config = structure(
                dag["schedule"], ScheduleConfig, job=row.job_name, component="schedule"
            )
            upsert_schedule(session, row.id, config, now)  # checks its dependencies

    @staticmethod
    def _version_row(
        row: m.JobDefinition,
        dag: dict[str, Any],
        folder: str | None,
        who: str | None,
        now: dt.datetime,
    ) -> m.JobDefinitionVersion:
        return m.JobDefinitionVersion(
            job_id=row.id,
            version=row.version,
            job_type=dag["type"],
            dag_definition=orjson.dumps(dag).decode(),
            description=dag.get("description"),
            definition_hash=dag_hash(dag),
            create_time=now,
            created_by=who,
            base_dir=folder,
        )

    def update(
        self,
        job_name: str,
        job: PipelineJob | dict[str, Any],
        *,
        updated_by: str | None = None,
        only_if_changed: bool = False,
        base_dir: str | None = None,
    ) -> JobDefinition:
        """Add a new version (after every check); with ``only_if_changed`` an identical
        definition adds none."""
        return self._add_version(
            job_name, *self._checked(job, base_dir), updated_by, only_if_changed
        )

    def _add_version(
        self,
        job_name: str,
        dag: dict[str, Any],
        folder: str | None,
        updated_by: str | None,
        only_if_changed: bool,
    ) -> JobDefinition:
        if dag["name"] != job_name:
            raise ConfigError(
                Problem(f"the definition is named {dag['name']!r}", job=job_name, field="name")
            )
        with Session(self.engine) as session, session.begin():
            row = self._row(session, job_name, lock=True)
            # the same file moved to another folder is another job: its paths mean others
            same = dag_hash(dag) == dag_hash(orjson.loads(row.dag_definition))
            if only_if_changed and same and folder == row.base_dir:
                return self._definition(session, row)
            now = m.utcnow()
            row.version += 1
            row.job_type = dag["type"]
            row.dag_definition = orjson.dumps(dag).decode()
            row.description = dag.get("description")
            row.update_time = now
            row.updated_by = updated_by
            row.base_dir = folder
            session.add(self._version_row(row, dag, folder, updated_by, now))
            self._apply_schedule(session, row, dag, now)
            session.flush()
            return self._definition(session, row)

    def register_or_update(
        self,
        job: PipelineJob | dict[str, Any],
        *,
        who: str | None = None,
        base_dir: str | None = None,
    ) -> tuple[JobDefinition, str]:
        """Register a new job, or add a version when its definition changed.
        Returns the definition and ``"added"``, ``"updated"`` or ``"unchanged"``."""
        dag, folder = self._checked(job, base_dir)
        try:
            return self._insert(dag, folder, who), "added"
        except JobAlreadyExists:
            before = self.get(dag["name"]).version
            after = self._add_version(dag["name"], dag, folder, who, only_if_changed=True)
            return after, ("updated" if after.version != before else "unchanged")

    def _set_enabled(self, job_name: str, enabled: bool) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, job_name, lock=True)
            row.enabled = enabled
            row.update_time = m.utcnow()

    def enable(self, job_name: str) -> None:
        """Enable the job (its latest version is what runs)."""
        self._set_enabled(job_name, True)

    def disable(self, job_name: str) -> None:
        """Disable the job: it is never scheduled until enabled again."""
        self._set_enabled(job_name, False)

    # --- per-job config rows -------------------------------------------------------

    def set_config(
        self,
        job_name: str,
        key: str,
        value: Any,
        *,
        config_type: str | None = None,
        description: str | None = None,
    ) -> None:
        """Override one setting of the job's config (validated against JobConfig)."""
        text, ctype = encode_value(value, config_type)
        with Session(self.engine) as session, session.begin():
            row = self._row(session, job_name, lock=True)
            definition = self._definition(session, row)
            trial = dict(definition.config)
            trial[key] = decode_value(text, ctype)
            cfg = attrs.evolve(definition, config=trial).effective_dag()["config"]
            structure(cfg, JobConfig, job=job_name, component="config")
            existing = session.execute(
                select(m.JobConfigRow).where(
                    m.JobConfigRow.job_id == row.id, m.JobConfigRow.config_key == key
                )
            ).scalar_one_or_none()
            now = m.utcnow()
            if existing is None:
                session.add(
                    m.JobConfigRow(
                        job_id=row.id,
                        config_key=key,
                        config_value=text,
                        config_type=ctype,
                        description=description,
                        create_time=now,
                        update_time=now,
                    )
                )
            else:
                existing.config_value, existing.config_type = text, ctype
                existing.description = description or existing.description
                existing.update_time = now

    def unset_config(self, job_name: str, key: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, job_name)
            session.execute(
                delete(m.JobConfigRow).where(
                    m.JobConfigRow.job_id == row.id, m.JobConfigRow.config_key == key
                )
            )

    # --- files ---------------------------------------------------------------------

    def import_directory(self, directory: str | Path, *, who: str | None = None) -> ImportReport:
        """Register or update every job file in ``directory`` (:meth:`import_files`)."""
        root = Path(directory)
        if not root.is_dir():
            raise ConfigError(f"cannot import {str(root)!r}: not a directory")
        return self.import_files(job_files(root), who=who)

    def import_files(self, paths: Iterable[str | Path], *, who: str | None = None) -> ImportReport:
        """Register or update each job file. Idempotent: an unchanged file adds no version.
        A bad file is reported and the others still import. Dependencies are checked
        against what is registered plus the whole batch (a cycle among the files is named
        as one) and registered first, whatever order the files come in."""
        report = ImportReport()
        jobs: dict[Path, PipelineJob | None] = {}
        for path in map(Path, paths):
            try:
                jobs[path] = load_job_file(path)
            except ConfigError:
                jobs[path] = None  # its problems: from load() below, all of them
        batch = {j.name: upstream_jobs(j) for j in jobs.values() if j is not None}
        rank = {name: i for i, name in enumerate(dependency_order(batch))}

        def position(path: Path) -> int:
            job = jobs[path]
            return rank.get(job.name, len(rank)) if job is not None else len(rank)

        for path in sorted(jobs, key=position):
            try:
                definition, outcome = self.register_or_update(self.load(path, batch=batch), who=who)
            except ConfigError as exc:
                report.failed[str(path)] = str(exc)
                continue
            getattr(report, outcome).append(definition.job_name)
        return report

    def export(self, job_name: str, version: int | None = None) -> str:
        """The job's definition as YAML (secrets stay as ``${env:…}`` references)."""
        return dag_to_yaml(self.get(job_name, version).dag_definition)
