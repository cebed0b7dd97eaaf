"""The state API of the original design: ValueState, ListState, MapState.

States are scoped to one execution and one operator, and — after ``key_by`` — to the key
of the record being processed: the same ``ValueState`` object reads and writes the value
of whichever key the operator is currently at. A :class:`StateManager` hands them out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from pipeline_core.state.backend import StateBackend

__all__ = ["KeyedState", "ListState", "MapState", "StateManager", "ValueState"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class _KeyContext:
    """The current key of a keyed operator (None for operator-scoped state)."""

    __slots__ = ("key",)

    def __init__(self) -> None:
        self.key: Any = None


class _State:
    __slots__ = ("_backend", "_ctx", "_ns")

    def __init__(self, backend: StateBackend[Any], namespace: str, ctx: _KeyContext) -> None:
        self._backend = backend
        self._ns = namespace
        self._ctx = ctx

    def clear(self) -> None:
        """Forget this state for the current key."""
        self._backend.delete(self._ns, self._ctx.key)


class ValueState(_State, Generic[T]):
    """One value per key."""

    __slots__ = ("_default",)

    def __init__(
        self, backend: StateBackend[Any], namespace: str, ctx: _KeyContext, default: T
    ) -> None:
        super().__init__(backend, namespace, ctx)
        self._default = default

    def value(self) -> T:
        value: T = self._backend.get(self._ns, self._ctx.key, self._default)
        return value

    def update(self, value: T) -> None:
        self._backend.put(self._ns, self._ctx.key, value)


class ListState(_State, Generic[T]):
    """A list per key."""

    def get(self) -> list[T]:
        return list(self._backend.get(self._ns, self._ctx.key, ()))

    def add(self, value: T) -> None:
        items = self.get()
        items.append(value)
        self._backend.put(self._ns, self._ctx.key, items)

    def update(self, values: list[T]) -> None:
        self._backend.put(self._ns, self._ctx.key, list(values))


class MapState(_State, Generic[K, V]):
    """A dict per key."""

    def _map(self) -> dict[K, V]:
        return dict(self._backend.get(self._ns, self._ctx.key, {}))

    def get(self, key: K, default: V | None = None) -> V | None:
        return self._map().get(key, default)

    def put(self, key: K, value: V) -> None:
        m = self._map()
        m[key] = value
        self._backend.put(self._ns, self._ctx.key, m)

    def remove(self, key: K) -> None:
        m = self._map()
        if key in m:
            del m[key]
            self._backend.put(self._ns, self._ctx.key, m)

    def contains(self, key: K) -> bool:
        return key in self._map()

    def keys(self) -> list[K]:
        return list(self._map())

    def values(self) -> list[V]:
        return list(self._map().values())

    def entries(self) -> Iterator[tuple[K, V]]:
        return iter(self._map().items())


class KeyedState:
    """What a keyed function receives: states of one operator at the current key.

    ``state.value("count", 0)``, ``state.list("seen")``, ``state.map("totals")``; the
    objects are created once per name and reused, so looking one up per record is cheap.
    """

    __slots__ = ("_backend", "_cache", "_ctx", "_prefix")

    def __init__(self, backend: StateBackend[Any], operator: str) -> None:
        self._backend = backend
        self._prefix = operator
        self._ctx = _KeyContext()
        self._cache: dict[tuple[str, str], Any] = {}

    @property
    def key(self) -> Any:
        """The key of the record being processed."""
        return self._ctx.key

    def _set_key(self, key: Any) -> None:
        self._ctx.key = key

    def value(self, name: str, default: Any = None) -> ValueState[Any]:
        state = self._cache.get(("v", name))
        if state is None:
            state = self._cache[("v", name)] = ValueState(
                self._backend, f"{self._prefix}/{name}", self._ctx, default
            )
        else:
            state._default = default
        return state

    def list(self, name: str) -> ListState[Any]:
        state = self._cache.get(("l", name))
        if state is None:
            state = self._cache[("l", name)] = ListState(
                self._backend, f"{self._prefix}/{name}", self._ctx
            )
        return state

    def map(self, name: str) -> MapState[Any, Any]:
        state = self._cache.get(("m", name))
        if state is None:
            state = self._cache[("m", name)] = MapState(
                self._backend, f"{self._prefix}/{name}", self._ctx
            )
        return state


class StateManager:
    """Hands out state for one execution, all kept in one backend."""

    def __init__(self, backend: StateBackend[Any]) -> None:
        self.backend = backend

    def keyed(self, operator: str) -> KeyedState:
        """Per-key states of an operator (its name scopes them)."""
        return KeyedState(self.backend, operator)
