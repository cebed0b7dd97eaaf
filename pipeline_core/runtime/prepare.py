"""Turning a PipelineJob into something runnable — where every config mistake surfaces.

``prepare`` resolves component types through the plugin registries, structures (and so
validates) their configs — relative paths joined to the job file's folder first
(``config/paths.py``) — imports step functions and builds the Stream, collecting every
problem into one ConfigError before anything runs.

Secret references are resolved only where the job runs: by default ``prepare`` checks
the configs with their references in place (what validation at registration needs: it
must never resolve a secret) and the factories resolve them when the execution creates
its components; ``resolve_secrets=True`` resolves them now, for a caller that is about
to run the job in this process and wants a missing secret reported before the start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from pipeline_core.config.paths import resolve_paths
from pipeline_core.config.secrets import check_references, structure_config, validate_config
from pipeline_core.errors import ConfigError, PluginError, Problem
from pipeline_core.io import Sink, Source
from pipeline_core.model.job import UNCHECKED, ComponentSpec, PipelineJob
from pipeline_core.model.schedule import ScheduleType
from pipeline_core.model.steps import apply_steps
from pipeline_core.plugins.manager import Plugins
from pipeline_core.plugins.registry import TypeRegistry
from pipeline_core.runtime.stream import Stream

__all__ = ["PreparedJob", "prepare"]


@attrs.frozen
class PreparedJob:
    """A validated job: factories for fresh components, and its operator chain.

    A factory of a job prepared without ``resolve_secrets`` resolves the component's
    secret references when called, so it may raise ConfigError (a variable not set, a
    resolved value of the wrong type) — the execution reports it as its failure."""

    job: PipelineJob
    make_source: Callable[[], Source[Any]]
    make_sink: Callable[[], Sink[Any]]
    make_dead_letter: Callable[[], Sink[Any]] | None
    stream: Stream
    source_label: str
    sink_label: str


def _factory(
    spec: Any,
    base: type[Any],
    registry: TypeRegistry[Any],
    job: PipelineJob,
    role: str,
    resolve_secrets: bool,
) -> tuple[Callable[[], Any], str]:
    if isinstance(spec, base):
        return (lambda: spec), f"{role} ({getattr(spec, 'type_name', type(spec).__name__)})"
    if not isinstance(spec, ComponentSpec):
        raise ConfigError(
            Problem(
                f"expected a {base.__name__}, a type name or a ComponentSpec, got {spec!r}",
                job=job.name,
                component=role,
            )
        )
    label = f"{role} ({spec.type})"
    try:
        cls = spec.cls or registry.get(spec.type)
    except PluginError as exc:
        raise ConfigError(Problem(str(exc), job=job.name, component=role, field="type")) from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(
            Problem(f"{cls!r} is not a {base.__name__}", job=job.name, component=label)
        )
    raw = resolve_paths(spec.config, cls.config_cls, job.base_dir)
    if resolve_secrets:
        config = structure_config(raw, cls.config_cls, job=job.name, component=label)
        return (lambda: cls(config)), label
    validate_config(raw, cls.config_cls, job=job.name, component=label)

    def make() -> Any:  # in the execution: resolves the references (ConfigError if not)
        return cls(structure_config(raw, cls.config_cls, job=job.name, component=label))

    return make, label


def _build_stream(job: PipelineJob) -> Stream:
    stream = apply_steps(Stream(), job.steps, job=job.name, base_dir=job.base_dir)
    if job.transform is not None:
        try:
            result = job.transform(stream)
        except Exception as exc:
            raise ConfigError(
                Problem(
                    f"the transform function raised {type(exc).__name__}: {exc}",
                    job=job.name,
                    component="transform",
                )
            ) from exc
        if not isinstance(result, Stream):
            raise ConfigError(
                Problem(
                    f"the transform function must return a Stream, got {type(result).__name__}",
                    job=job.name,
                    component="transform",
                )
            )
        stream = result
    return stream


def _schedule_problems(job: PipelineJob, plugins: Plugins) -> list[Problem]:
    """What a schedule can be checked for without the registry: an EVENT trigger that is
    installed (dependencies are checked against the registry: model/dependencies.py)."""
    schedule = job.schedule
    if schedule is None:
        return []
    if schedule.type is ScheduleType.EVENT and schedule.event_trigger not in plugins.triggers:
        installed = ", ".join(plugins.triggers.names()) or "none"
        return [
            Problem(
                f"unknown event trigger {schedule.event_trigger!r} (installed: {installed})",
                job=job.name,
                component="schedule",
                field="event_trigger",
            )
        ]
    return []  # dependencies: model/dependencies.py, against what is registered


def prepare(job: PipelineJob, plugins: Plugins, *, resolve_secrets: bool = False) -> PreparedJob:
    """Validate everything about ``job``; raise one ConfigError listing every problem.

    Secret references stay unresolved (validation) unless ``resolve_secrets``: then they
    are resolved now, in this process — only where the job is about to run."""
    problems: list[Problem] = []
    results: dict[str, Any] = {}
    resolve = resolve_secrets
    checks: dict[str, Callable[[], Any]] = {
        "source": lambda: _factory(job.source, Source, plugins.sources, job, "source", resolve),
        "sink": lambda: _factory(job.sink, Sink, plugins.sinks, job, "sink", resolve),
        "stream": lambda: _build_stream(job),
    }
    for part in ("source", "sink"):  # refused by the model (a probe job): reported there
        if getattr(job, part) is UNCHECKED:
            del checks[part]
    if job.config.dead_letter is not None:
        checks["dead_letter"] = lambda: _factory(
            job.config.dead_letter, Sink, plugins.sinks, job, "dead_letter sink", resolve
        )
    if job.schedule is not None:  # an EVENT trigger's options: resolved by the scheduler
        problems += [
            Problem(e.message, job=job.name, component="schedule", field=e.field)
            for e in check_references(job.schedule.event_config, "event_config")
        ]
    problems += _schedule_problems(job, plugins)
    if job.config.state_backend not in plugins.state_backends:
        problems.append(
            Problem(
                f"unknown state backend {job.config.state_backend!r} "
                f"(installed: {', '.join(plugins.state_backends.names()) or 'none'})",
                job=job.name,
                component="config",
                field="state_backend",
            )
        )
    for key, check in checks.items():
        try:
            results[key] = check()
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    if "source" not in results or "sink" not in results:
        raise ConfigError(Problem("a probe job is only checked, never prepared", job=job.name))
    make_source, source_label = results["source"]
    make_sink, sink_label = results["sink"]
    dead_letter = results.get("dead_letter")
    return PreparedJob(
        job=job,
        make_source=make_source,
        make_sink=make_sink,
        make_dead_letter=dead_letter[0] if dead_letter else None,
        stream=results["stream"],
        source_label=source_label,
        sink_label=sink_label,
    )
