"""Loading jobs from YAML/JSON files in the ``dag_definition`` shape of the original design::

name: orders-sync
type: BATCH_ROLLER
source: {type: file, config: {path: data/orders.jsonl}}
transform:
  - {type: filter, function: "fns:is_paid"}
  - {type: select, fields: [id, amount]}
sink: {type: file, config: {path: out/}}
config: {checkpoint_interval: 60000, on_error: skip}
schedule: {type: CRON, cron: "0 3 * * *", timezone: Europe/Berlin}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import attrs

from pipeline_core.config.converter import structure_parts
from pipeline_core.config.documents import parse_document
from pipeline_core.errors import ConfigError, IncompleteDefinition, Problem
from pipeline_core.model.job import (
    UNCHECKED,
    ComponentSpec,
    JobConfig,
    JobType,
    PipelineJob,
    StepSpec,
)
from pipeline_core.model.names import check_name
from pipeline_core.model.schedule import ScheduleConfig

__all__ = ["checked", "job_from_dict", "load_job_file"]

T = TypeVar("T")


@attrs.define(frozen=True, kw_only=True)
class _JobFile:
    name: str = attrs.field(validator=lambda _i, _a, v: check_name(v))
    source: ComponentSpec
    sink: ComponentSpec
    type: JobType = JobType.BATCH_ROLLER
    description: str | None = None
    transform: list[dict[str, Any]] = attrs.field(factory=list)
    config: JobConfig = attrs.field(factory=JobConfig)
    schedule: ScheduleConfig | None = None


_COMPONENTS = ("source", "sink", "config", "schedule")


def _locate(problem: Problem, job: str) -> Problem:
    """``field='source.config.path'`` → component ``source``, field ``config.path``."""
    field = problem.field or ""
    head, _, rest = field.partition(".")
    head_name = head.split("[")[0]
    if head_name in _COMPONENTS and problem.component is None:
        return attrs.evolve(problem, job=job, component=head_name, field=rest or None)
    return attrs.evolve(problem, job=problem.job or job)


#: the name a probe job gets when the definition's own name is refused
_PROBE_NAME = "unnamed"


def job_from_dict(data: Any, *, base_dir: str | None = None, origin: str = "<dict>") -> PipelineJob:
    """Build a PipelineJob from a parsed ``dag_definition``; raises ConfigError, or
    IncompleteDefinition listing every part's problems with a probe of the parts that
    parsed (for :func:`checked` to run the other checks on)."""
    if not isinstance(data, dict):
        raise ConfigError(
            Problem(f"{origin}: expected a mapping at the top, got {type(data).__name__}")
        )
    name = data.get("name")
    job_name = name if isinstance(name, str) else origin
    parsed, parts, found = structure_parts(data, _JobFile)
    problems = [_locate(p, job_name) for p in found]
    steps: list[StepSpec] = []
    for i, raw in enumerate(parts.get("transform", []), start=1):
        step_type = raw.get("type")
        if not isinstance(step_type, str):
            problems.append(
                Problem(
                    f"expected a 'type' naming the step, got {step_type!r}",
                    job=job_name,
                    component=f"transform step {i}",
                    field="type",
                )
            )
            continue
        steps.append(StepSpec(step_type, {k: v for k, v in raw.items() if k != "type"}))
    if parsed is None or problems:
        raise IncompleteDefinition(problems, _probe(data, parts, steps, base_dir))
    return PipelineJob(
        name=parsed.name,
        type=parsed.type,
        description=parsed.description,
        source=parsed.source,
        sink=parsed.sink,
        steps=tuple(steps),
        config=parsed.config,
        schedule=parsed.schedule,
        base_dir=base_dir,
    )


def _unchecked(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of attrs class ``cls`` with ``values`` and defaults for the rest, its
    cross-field checks not run (a probe's part: those problems are reported already)."""
    obj = object.__new__(cls)
    for a in attrs.fields(cast(Any, cls)):
        if a.name in values:
            value = values[a.name]
        elif isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            value = a.default.factory()
        else:
            value = a.default
        object.__setattr__(obj, a.name, value)
    return obj


def _fields_that_parse(data: dict[str, Any], key: str, cls: type[T]) -> T | None:
    """The part ``key`` of a definition that failed to parse, made of its fields that
    parse on their own (their problems are reported already); None if it is no mapping."""
    raw = data.get(key)
    if not isinstance(raw, dict):
        return None
    _obj, values, _problems = structure_parts(raw, cls)
    return _unchecked(cls, values)


def _probe(
    data: dict[str, Any], parts: dict[str, Any], steps: list[StepSpec], base_dir: str | None
) -> PipelineJob:
    """The parts that parsed as a job, broken ones left out: a missing source or sink is
    UNCHECKED (``prepare`` passes over it); a config or schedule that failed is made of
    its fields that parse (so its dead-letter sink, state backend, dependencies and
    trigger are still checked), else the default."""
    config = parts.get("config")
    if config is None:
        config = _fields_that_parse(data, "config", JobConfig) or JobConfig()
    schedule = parts.get("schedule")
    if schedule is None and "schedule" in data:
        schedule = _fields_that_parse(data, "schedule", ScheduleConfig)
        if schedule is not None:  # names refused by the schedule's check: reported there
            valid = tuple(d for d in schedule.dependencies if _valid_name(d))
            object.__setattr__(schedule, "dependencies", valid)
    return PipelineJob(
        name=parts.get("name", _PROBE_NAME),
        type=parts.get("type", JobType.BATCH_ROLLER),
        source=parts.get("source", UNCHECKED),
        sink=parts.get("sink", UNCHECKED),
        steps=tuple(steps),
        config=config,
        schedule=schedule,
        base_dir=base_dir,
    )


def _valid_name(name: Any) -> bool:
    try:
        check_name(name)
    except Exception:
        return False
    return True


def checked(
    load: Callable[[], PipelineJob], validator: Callable[[PipelineJob], None] | None
) -> PipelineJob:
    """``load()``, then ``validator`` on what it gave: one ConfigError listing the
    problems of both — when the model refused parts (IncompleteDefinition), the
    validator still checks the parts that parsed, so every problem of a definition is
    reported at once (a DependencyConflict when they all are dependency problems)."""
    try:
        job = load()
    except IncompleteDefinition as exc:
        if validator is None or exc.probe is None:
            raise ConfigError(exc.problems) from None
        shown = exc.job or exc.probe.name
        errors: list[ConfigError] = [exc]
        try:
            validator(exc.probe)
        except ConfigError as more:
            if exc.probe.name == _PROBE_NAME:  # the placeholder: name the job as the model did
                more = type(more)([attrs.evolve(p, job=shown) for p in more.problems])
            errors.append(more)
        raise ConfigError.merge(errors) from None
    if validator is not None:
        validator(job)
    return job


def load_job_file(path: str | Path) -> PipelineJob:
    """Read a ``.yaml``/``.yml``/``.json`` job file; raises ConfigError naming the mistake."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read job file {str(p)!r}: {exc.strerror}") from None
    kind = "json" if p.suffix.lower() == ".json" else "yaml"
    data = parse_document(text, kind=kind, origin=str(p))
    return job_from_dict(data, base_dir=str(p.resolve().parent), origin=str(p))
