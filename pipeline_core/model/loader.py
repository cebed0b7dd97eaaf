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

from pathlib import Path
from typing import Any

import attrs

from pipeline_core.config.converter import structure
from pipeline_core.config.documents import parse_document
from pipeline_core.errors import ConfigError, Problem
from pipeline_core.model.job import (
    ComponentSpec,
    JobConfig,
    JobType,
    PipelineJob,
    StepSpec,
)
from pipeline_core.model.names import check_name
from pipeline_core.model.schedule import ScheduleConfig

__all__ = ["job_from_dict", "load_job_file"]


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


def job_from_dict(data: Any, *, base_dir: str | None = None, origin: str = "<dict>") -> PipelineJob:
    """Build a PipelineJob from a parsed ``dag_definition``; raises ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(
            Problem(f"{origin}: expected a mapping at the top, got {type(data).__name__}")
        )
    name = data.get("name")
    job_name = name if isinstance(name, str) else origin
    try:
        parsed = structure(data, _JobFile)
    except ConfigError as exc:
        raise ConfigError([_locate(p, job_name) for p in exc.problems]) from None
    steps: list[StepSpec] = []
    problems: list[Problem] = []
    for i, raw in enumerate(parsed.transform, start=1):
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
    if problems:
        raise ConfigError(problems)
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
