"""A PipelineJob as the ``dag_definition`` document stored in the registry, and back."""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import orjson
import yaml

from pipeline_core.config.converter import converter
from pipeline_core.errors import ConfigError, Problem
from pipeline_core.model.job import ComponentSpec, JobConfig, PipelineJob
from pipeline_core.model.schedule import ScheduleConfig

__all__ = ["dag_hash", "dag_to_yaml", "job_to_dag"]

_ORDER = ("name", "type", "description", "source", "transform", "sink", "config", "schedule")


def _component(job: PipelineJob, role: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, ComponentSpec):
        raise ConfigError(
            Problem(
                f"a {type(spec).__name__} instance cannot be stored; give a type name and config",
                job=job.name,
                component=role,
            )
        )
    return {"type": spec.type, "config": converter.unstructure(spec.config)}


def _config(config: JobConfig) -> dict[str, Any]:
    """Only the settings that differ from the defaults, so stored documents stay short."""
    defaults = JobConfig()
    out = {}
    for field in attrs.fields(JobConfig):
        value = getattr(config, field.name)
        if value != getattr(defaults, field.name):
            out[field.name] = converter.unstructure(value)
    return out


def _schedule(schedule: ScheduleConfig) -> dict[str, Any]:
    defaults = ScheduleConfig()
    out: dict[str, Any] = {"type": schedule.type.value}
    for field in attrs.fields(ScheduleConfig):
        value = getattr(schedule, field.name)
        if field.name != "type" and value != getattr(defaults, field.name):
            out[field.name] = converter.unstructure(value)
    return out


def job_to_dag(job: PipelineJob) -> dict[str, Any]:
    """The storable document of a job defined by steps (job files, or Python jobs that use
    ``steps``). A Python ``transform`` function cannot be stored and is an error."""
    if job.transform is not None:
        raise ConfigError(
            Problem(
                "a Python transform function cannot be stored in the registry; use "
                "transform steps that name module:function",
                job=job.name,
                component="transform",
            )
        )
    dag: dict[str, Any] = {"name": job.name, "type": job.type.value}
    if job.description:
        dag["description"] = job.description
    dag["source"] = _component(job, "source", job.source)
    dag["transform"] = [{"type": s.type, **s.options} for s in job.steps]
    dag["sink"] = _component(job, "sink", job.sink)
    dag["config"] = _config(job.config)
    if job.schedule is not None:
        dag["schedule"] = _schedule(job.schedule)
    return dag


def dag_hash(dag: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a document (key order does not matter)."""
    return hashlib.sha256(orjson.dumps(dag, option=orjson.OPT_SORT_KEYS)).hexdigest()


def dag_to_yaml(dag: dict[str, Any]) -> str:
    ordered = {k: dag[k] for k in _ORDER if k in dag}
    ordered.update({k: v for k, v in dag.items() if k not in ordered})
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, default_flow_style=False)
