"""How state keys and values become bytes: ``pickle`` (any picklable object, the default)
or ``json`` (portable: readable by other tools and Python versions)."""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable
from typing import Any, Protocol

import orjson

__all__ = ["JsonSerializer", "PickleSerializer", "Serializer", "serializer_named"]


class Serializer(Protocol):
    name: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


# ``dumps``/``loads`` are the C functions themselves (partials, not methods that call
# them): the LMDB backend calls them once per key and value it reads or writes, and a
# Python-level wrapper was 40 % of a flush's serialising time.


class PickleSerializer:
    name = "pickle"

    def __init__(self) -> None:
        self.dumps: Callable[[Any], bytes] = functools.partial(
            pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL
        )
        self.loads: Callable[[bytes], Any] = pickle.loads


class JsonSerializer:
    """JSON via orjson. Keys must be JSON values; tuples come back as lists."""

    name = "json"

    def __init__(self) -> None:
        self.dumps: Callable[[Any], bytes] = functools.partial(
            orjson.dumps, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        )
        self.loads: Callable[[bytes], Any] = orjson.loads


_SERIALIZERS: dict[str, type[Any]] = {"pickle": PickleSerializer, "json": JsonSerializer}


def serializer_named(name: str) -> Serializer:
    try:
        serializer: Serializer = _SERIALIZERS[name]()
        return serializer
    except KeyError:
        raise ValueError(f"unknown serializer {name!r} (known: pickle, json)") from None
