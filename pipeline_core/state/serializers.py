"""How state keys and values become bytes: ``pickle`` (any picklable object, the default)
or ``json`` (portable: readable by other tools and Python versions)."""

from __future__ import annotations

import pickle
from typing import Any, Protocol

import orjson

__all__ = ["JsonSerializer", "PickleSerializer", "Serializer", "serializer_named"]


class Serializer(Protocol):
    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class JsonSerializer:
    """JSON via orjson. Keys must be JSON values; tuples come back as lists."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)

    def loads(self, data: bytes) -> Any:
        return orjson.loads(data)


_SERIALIZERS: dict[str, type[Any]] = {"pickle": PickleSerializer, "json": JsonSerializer}


def serializer_named(name: str) -> Serializer:
    try:
        serializer: Serializer = _SERIALIZERS[name]()
        return serializer
    except KeyError:
        raise ValueError(f"unknown serializer {name!r} (known: pickle, json)") from None
