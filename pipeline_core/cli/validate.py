"""``pipeline-run validate JOBFILE…``: everything registration checks — what a run checks
before it starts, functions read without importing them, dependencies against the
registered jobs and the other files given — and with ``--connect`` whether the
components reach what they read and write."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape

from pipeline_core.cli.output import err, out, print_error
from pipeline_core.cli.tables import print_json
from pipeline_core.config.documents import parse_document
from pipeline_core.config.secrets import redact
from pipeline_core.errors import ConfigError, PipelineError, Problem
from pipeline_core.model.dependencies import check_dependencies, upstream_jobs
from pipeline_core.model.job import PipelineJob
from pipeline_core.model.loader import checked, load_job_file
from pipeline_core.plugins.manager import Plugins, load_plugins
from pipeline_core.runtime.prepare import PreparedJob, prepare
from pipeline_core.runtime.validation import static_prepare

__all__ = ["add_arguments", "describe", "load_job"]

EXIT_CONFIG = 2


def load_job(path: str, *, run: bool) -> tuple[Plugins, PreparedJob]:
    """The job file, checked; with ``run``, its secret references resolved (this process
    runs it) — ``validate`` never resolves one."""
    plugins = load_plugins()
    for failure in plugins.failures:
        err.print(f"[yellow]warning:[/] {escape(str(failure))}", markup=True, soft_wrap=True)
    job = load_job_file(path)
    return plugins, prepare(job, plugins, resolve_secrets=run)


def describe(prepared: PreparedJob) -> str:
    steps = len(prepared.stream)
    return f"{prepared.source_label} → {steps} step{'s' * (steps != 1)} → {prepared.sink_label}"


def _has_references(spec: Any) -> bool:
    return "${" in repr(getattr(spec, "config", None))


def _check_inputs(prepared: PreparedJob, connect: bool) -> None:
    """What the source can see is wrong without reading (an input path that does not
    exist); with ``connect``, whether the source, sink and dead-letter sink reach what
    they read and write. Without ``connect`` a component whose config holds a secret
    reference is not asked (``validate`` resolves no secret); with it, the references
    are resolved as a run would, and one that does not resolve is reported."""
    job = prepared.job
    problems: list[Problem] = []
    components: list[tuple[Any, Any, str]] = [
        (job.source, prepared.make_source, prepared.source_label),
        (job.sink, prepared.make_sink, prepared.sink_label),
    ]
    if prepared.make_dead_letter is not None:
        components.append((job.config.dead_letter, prepared.make_dead_letter, "dead_letter sink"))
    for index, (spec, make, label) in enumerate(components):
        if not connect and (index > 0 or _has_references(spec)):
            continue
        try:
            component = make()
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        messages = component.check() if index == 0 else []
        if connect:
            logging.disable(logging.ERROR)  # client libraries log each refused connection
            try:
                unreachable = asyncio.run(component.check_connection())
            finally:
                logging.disable(logging.NOTSET)
            messages += [unreachable] if unreachable else []
        # with --connect the references are resolved, and a client's message may quote
        # the URL it could not reach
        problems += [Problem(redact(m), job=job.name, component=label) for m in messages]
    if problems:
        raise ConfigError(problems)


def _registered(url: str | None) -> tuple[dict[str, list[str]], set[str], str]:
    """The dependency graph and job names of the metadata database, and what it is
    called — when there is one: ``validate`` creates none (a SQLite file that does not
    exist is taken as no jobs)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from pipeline_core.store import MetadataStore
    from pipeline_core.store.engine import database_url, safe_url
    from pipeline_core.store.schedules import dependency_graph

    resolved = database_url(url)
    parsed = make_url(resolved)
    shown = safe_url(resolved)
    if parsed.get_backend_name() == "sqlite" and (
        not parsed.database or parsed.database == ":memory:" or not Path(parsed.database).exists()
    ):
        return {}, set(), f"no metadata database at {shown}"
    store = MetadataStore.open(resolved)
    try:
        with Session(store.engine) as session, session.begin():
            graph, known = dependency_graph(session)
    finally:
        store.close()
    return graph, known, f"{len(known)} job{'s' * (len(known) != 1)} registered in {shown}"


def _check_file(
    path: str,
    plugins: Plugins,
    graph: Mapping[str, Sequence[str]],
    known: Collection[str],
    connect: bool,
) -> PreparedJob:
    """Every check of one job file (``model/loader.checked``): the model, ``prepare``
    with functions read statically — the registry's validator — the dependency rule
    against ``graph``/``known``, and what the source can see; one ConfigError with
    every problem."""
    prepared: list[PreparedJob] = []

    def validator(job: PipelineJob) -> None:
        errors: list[ConfigError] = []
        try:
            prepared.append(static_prepare(job, plugins))
        except ConfigError as exc:
            errors.append(exc)
        try:
            check_dependencies(job.name, job.schedule, graph, known)
        except ConfigError as exc:
            errors.append(exc)
        if prepared:
            try:
                _check_inputs(prepared[0], connect)
            except ConfigError as exc:
                errors.append(exc)
        if errors:
            raise ConfigError.merge(errors)

    checked(lambda: load_job_file(path), validator)
    return prepared[0]


def _job_name(path: str) -> str | None:
    """The name a job file that failed to load gives (None if it cannot be read)."""
    try:
        data = parse_document(
            Path(path).read_bytes(), kind="json" if path.endswith(".json") else "yaml"
        )
    except (OSError, PipelineError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def validate(args: argparse.Namespace) -> int:
    plugins = load_plugins()
    for failure in plugins.failures:
        err.print(f"[yellow]warning:[/] {escape(str(failure))}", markup=True, soft_wrap=True)
    loaded: dict[str, PipelineJob | None] = {}
    for path in args.jobfiles:
        try:
            loaded[path] = load_job_file(path)
        except ConfigError:
            loaded[path] = None  # its problems: from _check_file, all of them
    batch = {j.name: upstream_jobs(j) for j in loaded.values() if j is not None}
    graph: dict[str, list[str]] = {}
    known: set[str] = set()
    against = None
    if any(batch.values()):  # only a DEPENDENCY schedule needs the registry
        try:
            graph, known, where = _registered(args.database)
        except PipelineError as exc:
            where = f"the metadata database could not be read ({exc})"
        files = len(args.jobfiles)
        against = (
            f"dependencies checked against {where} and the {files} file{'s' * (files != 1)} given"
        )
    results: list[dict[str, Any]] = []
    failed = False
    for path in args.jobfiles:
        try:
            prepared = _check_file(
                path, plugins, {**graph, **batch}, known | set(batch), args.connect
            )
        except PipelineError as exc:
            failed = True
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            errors = [redact(str(p)) for p in problems]
            job = loaded[path]
            name = job.name if job is not None else _job_name(path)
            results.append({"ok": False, "file": path, "job": name, "errors": errors})
            if not args.json:
                print_error(exc)
            continue
        results.append(
            {
                "ok": True,
                "file": path,
                "job": prepared.job.name,
                "source": prepared.source_label,
                "steps": len(prepared.stream),
                "sink": prepared.sink_label,
                "errors": [],
            }
        )
        if not args.json:
            out.print(f"ok: job {prepared.job.name!r}: {describe(prepared)}")
    if args.json:
        for result in results if against else []:
            result["dependencies_checked_against"] = against
        print_json(results[0] if len(results) == 1 else results)
    elif against:
        (err if failed else out).print(against, soft_wrap=True, markup=False, highlight=False)
    return EXIT_CONFIG if failed else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "jobfiles",
        nargs="+",
        metavar="JOBFILE",
        help="job files; dependencies may name each other's jobs",
    )
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument(
        "--connect",
        action="store_true",
        help="also connect to what the source, sink and dead-letter sink use (resolves "
        "the job's secret references, as a run would)",
    )
    p.set_defaults(func=validate)
