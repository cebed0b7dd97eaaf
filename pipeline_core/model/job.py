"""The job model: PipelineJob, JobConfig, component and step specs, and the builder."""

from __future__ import annotations

import builtins
import datetime as dt
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from pipeline_core.config.converter import FieldError, converter
from pipeline_core.model.names import check_name
from pipeline_core.model.schedule import ScheduleConfig

if TYPE_CHECKING:
    from pipeline_core.runtime.stream import Stream

__all__ = [
    "UNCHECKED",
    "BackpressureStrategy",
    "ComponentSpec",
    "JobBuilder",
    "JobConfig",
    "JobType",
    "OnError",
    "PipelineJob",
    "StepSpec",
]


class JobType(enum.StrEnum):
    """The three execution modes of the original design."""

    STREAMING = "STREAMING"
    BATCH_ROLLER = "BATCH_ROLLER"
    SQL_TASK = "SQL_TASK"


class BackpressureStrategy(enum.StrEnum):
    """What the source does when the buffer between it and the pipeline is full."""

    BUFFER = "BUFFER"  #: wait (lossless)
    DROP = "DROP"  #: drop the newest batch
    LATEST = "LATEST"  #: drop the oldest buffered batch, keep the newest
    ERROR = "ERROR"  #: fail the job with a BackpressureError


class OnError(enum.StrEnum):
    """What happens to a record that fails to decode or fails in a step."""

    FAIL = "fail"  #: the job fails, naming the record and the step
    SKIP = "skip"  #: the record is counted in failed_records and dropped
    DEAD_LETTER = "dead_letter"  #: counted, and written to the dead-letter sink


def _positive(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise FieldError(f"expected a number > 0, got {value!r}", attr.name)


def _non_negative(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value < 0:
        raise FieldError(f"expected a number >= 0, got {value!r}", attr.name)


def _non_empty(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    if not value or not value.strip():
        raise FieldError("must not be empty", attr.name)


def _safe_name(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    check_name(value, attr.name)


class _Unchecked:
    """Stands for a source or sink that the model refused: validation passes over it
    (its problem is already reported). Only in probe jobs, which are never run."""

    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED: Any = _Unchecked()


@attrs.define(frozen=True, kw_only=True)
class ComponentSpec:
    """A source or sink by type name and config dict — what a job file holds.

    ``cls`` lets Python jobs name a Source/Sink class directly, registered or not.
    """

    type: str = attrs.field(validator=_non_empty)
    config: dict[str, Any] = attrs.field(factory=dict)
    cls: builtins.type[Any] | None = attrs.field(default=None, eq=False)


@attrs.define(frozen=True, kw_only=True)
class _ComponentOptions:
    type: str = attrs.field(validator=_non_empty)
    config: dict[str, Any] = attrs.field(factory=dict)


def _structure_component(value: Any, _t: Any) -> ComponentSpec:
    parsed = converter.structure(value, _ComponentOptions)
    return ComponentSpec(type=parsed.type, config=parsed.config)


converter.register_structure_hook(ComponentSpec, _structure_component)
converter.register_unstructure_hook(
    ComponentSpec, lambda c: {"type": c.type, "config": converter.unstructure(c.config)}
)


@attrs.define(frozen=True)
class StepSpec:
    """One declarative transform step from a job file: ``{type: map, function: "m:f"}``."""

    type: str
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.define(frozen=True, kw_only=True)
class JobConfig:
    """Runtime settings of a job (the ``config`` block of a job file)."""

    #: Take a checkpoint this often (int = milliseconds, or "30s", "5m"); None = only at the
    #: end of the input — STREAMING jobs, whose input has no end: every 5 s.
    checkpoint_interval: dt.timedelta | None = None
    #: Take a checkpoint after this many records; None = no record-count trigger.
    checkpoint_every_records: int | None = attrs.field(default=None, validator=_positive)
    #: Completed checkpoints to keep (savepoints are always kept).
    checkpoint_retention: int = attrs.field(default=10, validator=_positive)
    #: Checkpoint when a source says a page is complete (the file source: each file), as
    #: long as checkpoints take at most 10 % of the time (a page that ends sooner is
    #: passed over; a later one, the timer or the end of input covers it).
    checkpoint_each_page: bool = True
    #: Also delete completed checkpoints older than this (the newest one is always kept).
    checkpoint_max_age: dt.timedelta | None = None
    backpressure: BackpressureStrategy = BackpressureStrategy.BUFFER
    #: Records the buffer between source and pipeline holds before backpressure applies.
    buffer_size: int = attrs.field(default=10_000, validator=_positive)
    #: Records per batch read from the source; None = what the source prefers (its
    #: ``preferred_batch_size``), else 256.
    source_batch_size: int | None = attrs.field(default=None, validator=_positive)
    #: Records per sink ``write``: while more input is waiting, output is coalesced until
    #: this many records are held; None = what the sink prefers, else 256.
    sink_batch_size: int | None = attrs.field(default=None, validator=_positive)
    #: Worker processes for steps marked ``cpu=True`` (1 = run them in the event loop).
    parallelism: int = attrs.field(default=1, validator=_positive)
    max_retry_times: int = attrs.field(default=0, validator=_non_negative)
    retry_interval: dt.timedelta = dt.timedelta(seconds=5)
    on_error: OnError = OnError.FAIL
    #: Show an excerpt of a failed record (at most 200 characters) in error messages
    #: (stored with the execution, shown by the API, dashboard and logs); false: they name
    #: the step or input line and the error type only. Dead-letter sinks still get the record.
    record_in_errors: bool = True
    #: Let a trigger start an execution while another one of this job is still active.
    allow_concurrent: bool = False
    dead_letter: ComponentSpec | None = None
    state_backend: str = "memory"

    def __attrs_post_init__(self) -> None:
        if self.on_error is OnError.DEAD_LETTER and self.dead_letter is None:
            raise FieldError(
                "on_error is 'dead_letter' but no dead_letter sink is configured", "dead_letter"
            )


@attrs.define(frozen=True, kw_only=True)
class PipelineJob:
    """One job: Source → transform → Sink, with its runtime config.

    ``steps`` is the declarative transform of a job file; ``transform`` a Python function
    ``Stream -> Stream``. Both may be given: the steps run first.
    """

    name: str = attrs.field(validator=_safe_name)
    source: ComponentSpec | Any
    sink: ComponentSpec | Any
    type: JobType = JobType.BATCH_ROLLER
    description: str | None = None
    steps: tuple[StepSpec, ...] = ()
    transform: Callable[[Stream], Stream] | None = attrs.field(default=None, eq=False)
    config: JobConfig = attrs.field(factory=JobConfig)
    #: When the service runs it (None = manual only); applied when a version is registered.
    schedule: ScheduleConfig | None = None
    #: Directory that relative paths and ``module:function`` references are resolved from.
    base_dir: str | None = attrs.field(default=None, eq=False)

    @staticmethod
    def builder() -> JobBuilder:
        """``PipelineJob.builder().name("x").source(...).transform(...).sink(...).build()``."""
        return JobBuilder()


def _component(spec: Any, config: dict[str, Any]) -> Any:
    if isinstance(spec, str):
        return ComponentSpec(type=spec, config=config)
    if isinstance(spec, type):
        name = getattr(spec, "type_name", spec.__name__)
        return ComponentSpec(type=name, config=config, cls=spec)
    if config:
        raise TypeError("config keywords go with a type name or class, not an instance")
    return spec


class JobBuilder:
    """Fluent builder for :class:`PipelineJob` (the original design's ``PipelineJob.builder()``).

    ``source``/``sink`` take a registered type name plus its options
    (``.source("file", path="in.jsonl")``), a Source/Sink class plus options, a
    :class:`ComponentSpec`, or a ready instance (used for a single execution).
    """

    def __init__(self) -> None:
        self._fields: dict[str, Any] = {}

    def name(self, name: str) -> JobBuilder:
        self._fields["name"] = name
        return self

    def type(self, job_type: JobType | str) -> JobBuilder:
        self._fields["type"] = JobType(job_type)
        return self

    def description(self, text: str) -> JobBuilder:
        self._fields["description"] = text
        return self

    def source(self, spec: Any, /, **config: Any) -> JobBuilder:
        self._fields["source"] = _component(spec, config)
        return self

    def sink(self, spec: Any, /, **config: Any) -> JobBuilder:
        self._fields["sink"] = _component(spec, config)
        return self

    def transform(self, fn: Callable[[Stream], Stream]) -> JobBuilder:
        self._fields["transform"] = fn
        return self

    def schedule(self, schedule: ScheduleConfig | None = None, /, **options: Any) -> JobBuilder:
        """A ScheduleConfig, or its fields: ``.schedule(type="CRON", cron="0 * * * *")``."""
        if schedule is None:
            from pipeline_core.config.converter import structure

            schedule = structure(
                options, ScheduleConfig, job=self._fields.get("name"), component="schedule"
            )
        self._fields["schedule"] = schedule
        return self

    def steps(self, *steps: StepSpec) -> JobBuilder:
        self._fields["steps"] = tuple(steps)
        return self

    def config(self, config: JobConfig | None = None, /, **options: Any) -> JobBuilder:
        """A JobConfig, or its fields as keywords (structured and validated like a job file)."""
        if config is None:
            from pipeline_core.config.converter import structure

            config = structure(options, JobConfig, job=self._fields.get("name"), component="config")
        self._fields["config"] = config
        return self

    def build(self) -> PipelineJob:
        missing = [f for f in ("name", "source", "sink") if f not in self._fields]
        if missing:
            raise ValueError(f"PipelineJob.builder(): missing {', '.join(missing)}")
        return PipelineJob(**self._fields)
