"""Registries that plugins fill through the ``pipeline_register_*`` hooks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

import attrs

from pipeline_core.errors import ConnectorConflict, ConnectorNotFound, PluginError

__all__ = ["Registration", "TypeRegistry"]

T = TypeVar("T")


@attrs.frozen
class Registration(Generic[T]):
    """One registered class and the plugin / distribution that registered it."""

    type_name: str
    cls: type[T]
    plugin: str
    distribution: str


class TypeRegistry(Generic[T]):
    """Classes of one kind (``source``, ``sink``, ``state backend``, ``trigger``) by type name.

    Plugins call :meth:`add`. When two distributions register the same type name, neither
    wins (the result must not depend on install order): the name becomes a conflict, and
    :meth:`get` raises :class:`ConnectorConflict` naming both.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Registration[T]] = {}
        self._conflicts: dict[str, list[Registration[T]]] = {}
        # Set by the plugin host while one plugin's hook runs, so that add() knows who
        # is registering without the plugin having to say so.
        self._current: tuple[str, str] = ("<direct>", "<direct>")

    def add(self, cls: type[T], *, type_name: str | None = None) -> None:
        """Register ``cls`` under ``type_name`` (default: ``cls.type_name``)."""
        name = type_name or getattr(cls, "type_name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"{self.kind} class {cls.__module__}.{cls.__qualname__} registered by plugin "
                f"{self._current[0]!r} has no type_name"
            )
        if not isinstance(getattr(cls, "config_cls", None), type):
            raise PluginError(
                f"{self.kind} class {cls.__module__}.{cls.__qualname__} has no config_cls "
                "(an attrs class describing its config)"
            )
        plugin, dist = self._current
        reg = Registration(type_name=name, cls=cls, plugin=plugin, distribution=dist)
        if name in self._conflicts:
            self._conflicts[name].append(reg)
            return
        existing = self._entries.get(name)
        if existing is None:
            self._entries[name] = reg
        elif existing.cls is not cls:
            del self._entries[name]
            self._conflicts[name] = [existing, reg]

    def get(self, type_name: str) -> type[T]:
        """The class registered as ``type_name``; raises ConnectorNotFound / ConnectorConflict."""
        reg = self._entries.get(type_name)
        if reg is not None:
            return reg.cls
        if type_name in self._conflicts:
            raise self.conflict_error(type_name)
        raise ConnectorNotFound(self.kind, type_name, self.names())

    def conflict_error(self, type_name: str) -> ConnectorConflict:
        owners = [f"{r.distribution} (plugin {r.plugin!r})" for r in self._conflicts[type_name]]
        return ConnectorConflict(self.kind, type_name, owners)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def conflicts(self) -> dict[str, list[Registration[T]]]:
        return dict(self._conflicts)

    def registrations(self) -> Iterator[Registration[T]]:
        for name in sorted(self._entries):
            yield self._entries[name]

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._entries

    def __repr__(self) -> str:
        return f"TypeRegistry({self.kind!r}, {self.names()!r})"

    def _set_current(self, plugin: str, distribution: str) -> None:
        self._current = (plugin, distribution)
