"""Typed per-job config rows (``pipeline_job_config``) and how they override a job's config.

Keys may be written as in the original design (``checkpoint.interval``,
``backpressure.strategy``, ``max.retry.times``) or as JobConfig field names
(``checkpoint_interval``). Values are typed STRING / INT / BOOLEAN / JSON.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from pipeline_core.errors import ConfigError, Problem
from pipeline_core.model.job import JobConfig

__all__ = ["CONFIG_TYPES", "config_field", "decode_value", "encode_value"]

CONFIG_TYPES = ("STRING", "INT", "BOOLEAN", "JSON")
_ALIASES = {"backpressure.strategy": "backpressure"}
_FIELDS = frozenset(f.name for f in attrs.fields(JobConfig))


def config_field(key: str) -> str:
    """The JobConfig field a config key overrides; ConfigError if there is none."""
    name = _ALIASES.get(key, key.replace(".", "_"))
    if name not in _FIELDS:
        raise ConfigError(
            Problem(f"unknown config key {key!r} (known: {', '.join(sorted(_FIELDS))})", field=key)
        )
    return name


def encode_value(value: Any, config_type: str | None = None) -> tuple[str, str]:
    """(text to store, its type); the type is inferred from the value when not given."""
    if config_type is None:
        if isinstance(value, bool):
            config_type = "BOOLEAN"
        elif isinstance(value, int):
            config_type = "INT"
        elif isinstance(value, str):
            config_type = "STRING"
        else:
            config_type = "JSON"
    config_type = config_type.upper()
    if config_type not in CONFIG_TYPES:
        raise ConfigError(
            f"config type must be one of {', '.join(CONFIG_TYPES)}, got {config_type!r}"
        )
    if config_type == "JSON":
        return orjson.dumps(value).decode(), config_type
    if config_type == "BOOLEAN":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false for a BOOLEAN value, got {value!r}")
        return ("true" if value else "false"), config_type
    if config_type == "INT":
        try:
            return str(int(value)), config_type
        except (TypeError, ValueError):
            raise ConfigError(f"expected an integer for an INT value, got {value!r}") from None
    return str(value), config_type


def decode_value(text: str, config_type: str) -> Any:
    if config_type == "INT":
        return int(text)
    if config_type == "BOOLEAN":
        return text == "true"
    if config_type == "JSON":
        return orjson.loads(text)
    return text
