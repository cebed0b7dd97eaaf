"""Serializers and deserializers by name: bytes, utf8, json or a ``module:function``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from pipeline_core.model.functions import import_callable

__all__ = ["deserializer", "serializer"]


def deserializer(name: str, base_dir: str | None = None) -> Callable[[bytes], Any]:
    if name == "bytes":
        return lambda b: b
    if name == "utf8":
        return lambda b: b.decode("utf-8")
    if name == "json":
        return orjson.loads
    fn: Callable[[bytes], Any] = import_callable(name, base_dir)
    return fn


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise TypeError(f"expected bytes, got {type(value).__name__}")


def serializer(name: str, base_dir: str | None = None) -> Callable[[Any], bytes]:
    if name == "bytes":
        return _to_bytes
    if name == "utf8":
        return lambda v: str(v).encode("utf-8")
    if name == "json":
        return orjson.dumps
    fn: Callable[[Any], bytes] = import_callable(name, base_dir)
    return fn
