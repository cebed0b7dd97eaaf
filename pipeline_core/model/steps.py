"""The declarative transform steps of job files, compiled onto the Stream API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs

from pipeline_core.config.converter import FieldError, structure
from pipeline_core.errors import ConfigError, Problem, did_you_mean
from pipeline_core.model.functions import import_callable
from pipeline_core.model.job import StepSpec
from pipeline_core.model.names import check_name
from pipeline_core.runtime.stream import Stream

__all__ = ["STEP_TYPES", "apply_steps"]


def _positive(_i: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise FieldError(f"expected a number > 0, got {value!r}", attr.name)


@attrs.define(frozen=True, kw_only=True)
class FunctionStep:
    function: str
    name: str | None = None


@attrs.define(frozen=True, kw_only=True)
class MapStep(FunctionStep):
    cpu: bool = False


@attrs.define(frozen=True, kw_only=True)
class SelectStep:
    fields: list[str]
    name: str | None = None


@attrs.define(frozen=True, kw_only=True)
class DistinctStep:
    key: str | None = None  #: a ``module:function`` computing the key
    field: str | None = None  #: or a dict field used as the key
    name: str | None = None


@attrs.define(frozen=True, kw_only=True)
class KeyedMapStep(FunctionStep):
    """``function(record, state)`` per key; the key is a dict field or a function."""

    key_field: str | None = None
    key: str | None = None


@attrs.define(frozen=True, kw_only=True)
class RateLimitStep:
    per_second: float = attrs.field(validator=_positive)
    name: str | None = None


@attrs.define(frozen=True, kw_only=True)
class BatchStep:
    size: int = attrs.field(validator=_positive)
    name: str | None = None


@attrs.define(frozen=True, kw_only=True)
class MapAsyncStep(FunctionStep):
    concurrency: int = attrs.field(default=16, validator=_positive)


def _map(s: Stream, c: MapStep, d: str | None) -> Stream:
    return s.map(import_callable(c.function, d), cpu=c.cpu, name=c.name)


def _filter(s: Stream, c: FunctionStep, d: str | None) -> Stream:
    return s.filter(import_callable(c.function, d), name=c.name)


def _flat_map(s: Stream, c: FunctionStep, d: str | None) -> Stream:
    return s.flat_map(import_callable(c.function, d), name=c.name)


def _select(s: Stream, c: SelectStep, _d: str | None) -> Stream:
    if not c.fields:
        raise FieldError("expected at least one field", "fields")
    return s.select(*c.fields, name=c.name)


def _distinct(s: Stream, c: DistinctStep, d: str | None) -> Stream:
    if c.key and c.field:
        raise FieldError("give either 'key' or 'field', not both", "key")
    if c.field:
        field = c.field
        return s.distinct(lambda r: r[field], name=c.name)
    return s.distinct(import_callable(c.key, d, "key") if c.key else None, name=c.name)


@attrs.define(frozen=True, kw_only=True)
class WindowStep:
    """``{type: window, key_field: word, size: 10s, timestamp_field: ts,
    function: "fns:add", initial: 0}`` — event-time windows per key."""

    function: str  #: aggregate(acc, record) -> acc
    size: dt.timedelta
    key_field: str | None = None
    key: str | None = None
    timestamp_field: str | None = None
    timestamp: str | None = None  #: a module:function giving epoch milliseconds
    initial: Any = None
    slide: dt.timedelta | None = None
    out_of_orderness: dt.timedelta = dt.timedelta(0)
    allowed_lateness: dt.timedelta = dt.timedelta(0)
    idle_timeout: dt.timedelta | None = None
    on_late: str = "drop"
    #: the input's partition count: the watermark waits for all of them (or idle_timeout)
    partitions: int | None = attrs.field(default=None, validator=_positive)
    name: str | None = None


def _window(s: Stream, c: WindowStep, d: str | None) -> Stream:
    if bool(c.key) == bool(c.key_field):
        raise FieldError("give exactly one of 'key' (module:function) or 'key_field'", "key")
    if bool(c.timestamp) == bool(c.timestamp_field):
        raise FieldError(
            "give exactly one of 'timestamp' (module:function) or 'timestamp_field'", "timestamp"
        )
    if c.on_late not in ("drop", "emit"):
        raise FieldError(f"expected drop or emit, got {c.on_late!r}", "on_late")
    field = c.key_field
    keyed = s.key_by((lambda r: r[field]) if field else import_callable(c.key or "", d, "key"))
    return keyed.window(
        c.size,
        timestamp=c.timestamp_field or import_callable(c.timestamp or "", d, "timestamp"),
        aggregate=import_callable(c.function, d),
        initial=c.initial,
        slide=c.slide,
        out_of_orderness=c.out_of_orderness,
        allowed_lateness=c.allowed_lateness,
        idle_timeout=c.idle_timeout,
        on_late=c.on_late,
        partitions=c.partitions,
        name=c.name,
    )


def _keyed_map(s: Stream, c: KeyedMapStep, d: str | None) -> Stream:
    if bool(c.key) == bool(c.key_field):
        raise FieldError("give exactly one of 'key' (module:function) or 'key_field'", "key")
    if c.key_field:
        field = c.key_field
        keyed = s.key_by(lambda r: r[field])
    else:
        keyed = s.key_by(import_callable(c.key or "", d, "key"))
    return keyed.map(import_callable(c.function, d), name=c.name)


def _rate_limit(s: Stream, c: RateLimitStep, _d: str | None) -> Stream:
    return s.rate_limit(c.per_second, name=c.name)


def _batch(s: Stream, c: BatchStep, _d: str | None) -> Stream:
    return s.batch(c.size, name=c.name)


def _map_async(s: Stream, c: MapAsyncStep, d: str | None) -> Stream:
    return s.map_async(import_callable(c.function, d), concurrency=c.concurrency, name=c.name)


#: step type → (options class, how it extends the Stream)
STEP_TYPES: dict[str, tuple[type[Any], Callable[[Stream, Any, str | None], Stream]]] = {
    "map": (MapStep, _map),
    "filter": (FunctionStep, _filter),
    "flat_map": (FunctionStep, _flat_map),
    "select": (SelectStep, _select),
    "distinct": (DistinctStep, _distinct),
    "keyed_map": (KeyedMapStep, _keyed_map),
    "window": (WindowStep, _window),
    "rate_limit": (RateLimitStep, _rate_limit),
    "batch": (BatchStep, _batch),
    "map_async": (MapAsyncStep, _map_async),
}


def apply_steps(
    stream: Stream, steps: tuple[StepSpec, ...], *, job: str, base_dir: str | None
) -> Stream:
    """Extend ``stream`` with ``steps``; every mistake becomes one Problem."""
    problems: list[Problem] = []
    for i, step in enumerate(steps, start=1):
        component = f"transform step {i} ({step.type})"
        known = STEP_TYPES.get(step.type)
        if known is None:
            problems.append(
                Problem(
                    f"unknown step type {step.type!r}{did_you_mean(step.type, STEP_TYPES)} "
                    f"(known: {', '.join(sorted(STEP_TYPES))})",
                    job=job,
                    component=f"transform step {i}",
                    field="type",
                )
            )
            continue
        options_cls, extend = known
        if "name" in step.options:  # it names the step's state and metrics: a safe name
            try:
                check_name(step.options["name"], "name")
            except FieldError as exc:
                problems.append(Problem(exc.message, job=job, component=component, field="name"))
        try:
            options = structure(step.options, options_cls, job=job, component=component)
            if getattr(options, "name", None) is None:
                options = attrs.evolve(options, name=f"transform step {i} ({step.type})")
            stream = extend(stream, options, base_dir)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except FieldError as exc:
            problems.append(Problem(exc.message, job=job, component=component, field=exc.field))
    if problems:
        raise ConfigError(problems)
    return stream
