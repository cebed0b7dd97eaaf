"""Registries that plugins fill through the ``pipeline_register_*`` hooks."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import attrs

from pipeline_core.errors import ConnectorConflict, ConnectorNotFound, PluginError

__all__ = ["Registration", "TypeRegistry"]

T = TypeVar("T")


@attrs.define(eq=False)
class Registration(Generic[T]):
    """One registered class and the plugin / distribution that registered it.

    A plugin may register a class by reference (``"package.module:Class"``) so that
    discovering it imports nothing of the connector's client libraries: the class is
    imported the first time :attr:`cls` is read — by a job that uses it, or by a listing
    of every connector's options.
    """

    type_name: str
    #: ``module:qualname`` of the class
    ref: str
    plugin: str
    distribution: str
    kind: str = "connector"
    _cls: type[T] | None = attrs.field(default=None, alias="cls")

    @property
    def resolved(self) -> type[T] | None:
        """The class if it is imported already, else None (nothing is imported)."""
        return self._cls

    @property
    def cls(self) -> type[T]:
        if self._cls is None:
            module, _, qualname = self.ref.partition(":")
            try:
                obj: Any = importlib.import_module(module)
                for part in qualname.split("."):
                    obj = getattr(obj, part)
            except Exception as exc:
                raise PluginError(
                    f"{self.kind} {self.type_name!r} of plugin {self.plugin!r} "
                    f"({self.distribution}) cannot be loaded from {self.ref}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            _check_class(obj, self.kind, self.plugin)
            self._cls = obj
        return self._cls


def _ref(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _check_class(cls: Any, kind: str, plugin: str) -> None:
    what = f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)
    if not isinstance(cls, type):
        raise PluginError(f"{kind} {what} registered by plugin {plugin!r} is not a class")
    if not isinstance(getattr(cls, "config_cls", None), type):
        raise PluginError(
            f"{kind} class {what} has no config_cls (an attrs class describing its config)"
        )


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

    def add(self, cls: type[T] | str, *, type_name: str | None = None) -> None:
        """Register ``cls`` under ``type_name`` (default: ``cls.type_name``).

        ``cls`` may be a reference, ``"package.module:Class"``, with ``type_name`` given:
        the class is then imported only when it is first used (see :class:`Registration`).
        """
        plugin, dist = self._current
        if isinstance(cls, str):
            if not type_name:
                raise PluginError(
                    f"{self.kind} {cls} registered by plugin {plugin!r} by reference needs "
                    "type_name="
                )
            if ":" not in cls:
                raise PluginError(
                    f"{self.kind} reference {cls!r} of plugin {plugin!r} is not 'module:Class'"
                )
            name, ref, resolved = type_name, cls, None
        else:
            declared = type_name or getattr(cls, "type_name", None)
            if not isinstance(declared, str) or not declared:
                raise PluginError(
                    f"{self.kind} class {cls.__module__}.{cls.__qualname__} registered by "
                    f"plugin {plugin!r} has no type_name"
                )
            _check_class(cls, self.kind, plugin)
            name, ref, resolved = declared, _ref(cls), cls
        reg: Registration[T] = Registration(
            type_name=name, ref=ref, plugin=plugin, distribution=dist, kind=self.kind, cls=resolved
        )
        if name in self._conflicts:
            self._conflicts[name].append(reg)
            return
        existing = self._entries.get(name)
        if existing is None:
            self._entries[name] = reg
        elif existing.ref != ref or (
            resolved is not None and existing.resolved not in (None, resolved)
        ):
            del self._entries[name]
            self._conflicts[name] = [existing, reg]

    def load_all(self) -> list[PluginError]:
        """Import every class registered by reference now (a fork server does, once, so
        that its workers do not); the errors of those that cannot be loaded."""
        errors = []
        for reg in self._entries.values():
            try:
                reg.cls  # noqa: B018 - imports it
            except PluginError as exc:
                errors.append(exc)
        return errors

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
