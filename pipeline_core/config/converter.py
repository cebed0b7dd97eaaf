"""Structuring config dicts into attrs classes, with errors that name the field.

One cattrs converter for the whole framework: unknown keys are rejected and primitives are
strict (``"5"`` is not an int, ``5`` is not a str), so a typo or a wrong type in a job file
is reported instead of silently becoming something else. The one exception: a field
filled by a secret reference gets text (:class:`ResolvedText`), which a number or boolean
field parses.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, cast

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, list_structure_factory
from cattrs.errors import (
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)

from pipeline_core.errors import ConfigError, Problem

__all__ = [
    "FieldError",
    "ResolvedText",
    "converter",
    "parse_duration",
    "structure",
    "unstructure",
]

T = TypeVar("T")


class FieldError(ValueError):
    """Raised by validators and structure hooks: ``message`` about ``field`` (if known)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


class ResolvedText(str):
    """A config string that was one secret reference (``${env:BATCH}``), resolved. A
    number or boolean field takes it parsed (``"500"`` → 500, ``"true"`` → True), so that
    the environment can fill any field; a string field takes it as a plain ``str``.
    ``parsed`` says whether a field parsed it (its value was no text after all)."""

    reference: str
    parsed: bool = False


_BOOLS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLS |= {"false": False, "no": False, "off": False, "0": False}


def _from_text(value: ResolvedText, expected: type) -> Any:
    text = value.strip()
    try:
        parsed: Any = _BOOLS[text.lower()] if expected is bool else expected(text)
    except (KeyError, ValueError):
        raise FieldError(f"expected {expected.__name__}, got {value!r}") from None
    value.parsed = True
    return parsed


def _strict(expected: type, *, accept: tuple[type, ...] = ()) -> Any:
    ok = (expected, *accept)

    def hook(value: Any, _t: Any) -> Any:
        if type(value) is ResolvedText:
            return str(value) if expected is str else _from_text(value, expected)
        # bool is an int subclass; a YAML "yes" must not become batch_size=1.
        if isinstance(value, bool) and expected is not bool:
            raise FieldError(f"expected {expected.__name__}, got {value!r}")
        if not isinstance(value, ok):
            raise FieldError(f"expected {expected.__name__}, got {value!r}")
        return float(typing.cast(float, value)) if expected is float else value

    return hook


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> dt.timedelta:
    """``"30s"``, ``"5m"``, ``"250ms"``, ``"1h"``, or an int of milliseconds (as in the
    original design's ``checkpoint_interval: 60000``)."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise FieldError(f"expected a duration >= 0, got {value!r}")
        return dt.timedelta(milliseconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return dt.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise FieldError(
        f"expected a duration like '30s', '5m', '250ms' or milliseconds as a number, got {value!r}"
    )


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        for member in cls:
            if value.upper() == str(member.value).upper() or value.upper() == member.name:
                return member
    choices = ", ".join(str(m.value) for m in cls)
    raise FieldError(f"expected one of {choices}, got {value!r}")


def _structure_literal(value: Any, t: Any) -> Any:
    choices = typing.get_args(t)
    if value in choices:
        return value
    raise FieldError(f"expected one of {', '.join(map(str, choices))}, got {value!r}")


def _structure_any(value: Any, _t: Any) -> Any:
    return value


def _is_list_like(t: Any) -> bool:
    origin = typing.get_origin(t)
    if origin is list:
        return True
    args = typing.get_args(t)
    return origin is tuple and len(args) == 2 and args[1] is Ellipsis


def _sequence_factory(t: Any, conv: cattrs.Converter) -> Any:
    """cattrs would make ``list("abc")`` of a string (``dependencies: abc`` becoming
    ``[a, b, c]``): a list field takes a list (or tuple) only."""
    if typing.get_origin(t) is list:
        base = list_structure_factory(t, conv)
    else:
        base = homogenous_tuple_structure_factory(t, conv)

    def hook(value: Any, _t: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise FieldError(f"expected a list, got {value!r}")
        return base(value, _t)

    return hook


def _make_converter() -> cattrs.Converter:
    c = cattrs.Converter(forbid_extra_keys=True)
    # cattrs dispatches classes through functools.singledispatch (subclasses included),
    # so StrEnum/IntEnum need their own registrations or the str/int hook takes them.
    c.register_structure_hook(int, _strict(int))
    c.register_structure_hook(float, _strict(float, accept=(int,)))
    c.register_structure_hook(str, _strict(str))
    c.register_structure_hook(bool, _strict(bool))
    for enum_base in (enum.Enum, enum.StrEnum, enum.IntEnum):
        c.register_structure_hook(enum_base, _structure_enum)
    c.register_structure_hook(dt.timedelta, lambda v, _t: parse_duration(v))
    c.register_unstructure_hook(dt.timedelta, lambda v: f"{v.total_seconds():g}s")
    literal: Any = typing.Literal
    c.register_structure_hook_func(lambda t: typing.get_origin(t) is literal, _structure_literal)
    c.register_structure_hook(typing.Any, _structure_any)
    c.register_structure_hook_factory(_is_list_like, _sequence_factory)
    c.register_structure_hook(
        str | list[str], lambda v, _t: v if isinstance(v, str) else c.structure(v, list[str])
    )
    return c


converter = _make_converter()


def _problems(exc: BaseException, path: list[str]) -> list[tuple[list[str], str]]:
    if isinstance(exc, ClassValidationError):
        out: list[tuple[list[str], str]] = []
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            out += _problems(sub, [*path, str(note.name)])
        for sub in without:
            out += _problems(sub, path)
        return out
    if isinstance(exc, IterableValidationError):
        out = []
        items, rest = exc.group_exceptions()
        for sub, item in items:
            out += _problems(sub, [*path, f"[{item.index}]"])
        for sub in rest:
            out += _problems(sub, path)
        return out
    if isinstance(exc, ExceptionGroup) and not isinstance(exc, BaseValidationError):
        # a cross-field check that found several mistakes (ScheduleConfig)
        return [p for sub in exc.exceptions for p in _problems(sub, path)]
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = sorted(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else []
        return [
            ([*path, key], f"unknown key (allowed: {', '.join(allowed)})")
            for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, KeyError):
        return [(path, "missing required field")]
    if isinstance(exc, AttributeError) and exc.name in ("keys", "items", "get"):
        # cattrs reading a nested attrs class out of something that is not a mapping
        got = type(exc.obj).__name__ if exc.obj is not None else "a scalar"
        return [(path, f"expected a mapping of options, got {got}")]
    if isinstance(exc, FieldError):
        return [([*path, exc.field] if exc.field else path, exc.message)]
    if (
        isinstance(exc, TypeError)
        and len(exc.args) >= 4
        and isinstance(exc.args[1], attrs.Attribute)
    ):
        # attrs' own instance_of / in_ validators: (msg, attribute, expected, value)
        attr, expected, value = exc.args[1], exc.args[2], exc.args[3]
        return [([*path, attr.name], f"expected {_type_name(expected)}, got {value!r}")]
    return [(path, str(exc) or type(exc).__name__)]


def _dotted(path: list[str]) -> str | None:
    if not path:
        return None
    return "".join(p if p.startswith("[") else f".{p}" for p in path).lstrip(".")


def _each_field(data: Mapping[str, Any], cls: type[Any]) -> tuple[dict[str, Any], list[Any]]:
    """Structure every field of attrs class ``cls`` on its own and run its validator:
    (the values that passed, (path, message) for every problem) — cattrs stops a class
    at its first validator (they run in ``__init__``, after every field structured), so
    ``batch_size: abc`` would hide ``csv_delimiter: toolong``. Cross-field checks
    (``__attrs_post_init__``) need every field and stay with the class."""
    values: dict[str, Any] = {}
    problems: list[tuple[list[str], str]] = []
    fields = attrs.fields(attrs.resolve_types(cls))
    names = {a.name for a in fields}
    extra = sorted(k for k in data if k not in names)
    problems += [([str(k)], f"unknown key (allowed: {', '.join(sorted(names))})") for k in extra]
    for a in fields:
        if a.name not in data:
            if a.default is attrs.NOTHING:
                problems.append(([a.name], "missing required field"))
            continue
        raw = data[a.name]
        if attrs.has(a.type) and isinstance(raw, Mapping):
            _inner, nested = _each_field(raw, a.type)
            if nested:
                problems += [([a.name, *path], msg) for path, msg in nested]
                continue
        try:
            value = converter.structure(raw, a.type)
        except Exception as exc:
            problems += _problems(exc, [a.name])
            continue
        try:
            if a.validator is not None:
                a.validator(None, a, value)
        except Exception as exc:  # validators name their field (FieldError, attrs' own)
            found = _problems(exc, [])
            problems += [(p if p[:1] == [a.name] else [a.name, *p], m) for p, m in found]
            continue
        values[a.name] = value
    return values, problems


def structure_parts(
    data: Mapping[str, Any], cls: type[T], *, job: str | None = None, component: str | None = None
) -> tuple[T | None, dict[str, Any], list[Problem]]:
    """Structure ``data`` into attrs class ``cls``: (the object or None, the fields that
    structured and passed their validators, one Problem per mistake of every field)."""
    try:
        obj: T = converter.structure(data, cls)
    except Exception as exc:
        values, found = _each_field(data, cls)
        if not found:  # every field is fine on its own: a cross-field check failed
            found = _problems(exc, [])
        problems = [
            Problem(msg, job=job, component=component, field=_dotted(path)) for path, msg in found
        ]
        return None, values, problems
    return obj, {a.name: getattr(obj, a.name) for a in attrs.fields(cast(Any, cls))}, []


def structure(
    data: Any, cls: type[T], *, job: str | None = None, component: str | None = None
) -> T:
    """Structure ``data`` into ``cls``; raise ConfigError with one Problem per mistake
    (for an attrs class: of every field, validators included)."""
    if not isinstance(data, Mapping) and attrs.has(cls):
        raise ConfigError(
            Problem(f"expected a mapping of options, got {data!r}", job=job, component=component)
        )
    if attrs.has(cls):
        obj, _values, problems = structure_parts(data, cls, job=job, component=component)
        if obj is None:
            raise ConfigError(problems)
        return cast(T, obj)
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        problems = [
            Problem(msg, job=job, component=component, field=_dotted(path))
            for path, msg in _problems(exc, [])
        ]
        raise ConfigError(problems) from None


def unstructure(obj: Any) -> Any:
    return converter.unstructure(obj)
