"""Plugin discovery: stevedore finds the modules, pluggy calls their hooks.

Discovery happens once and explicitly (:func:`load_plugins`), never at import time.
Every module named in the entry-point group ``pipeline.connectors`` is imported; one that
fails is reported by name and distribution (:attr:`Plugins.failures`) and the others still
load. Each loaded module is registered with a pluggy ``PluginManager``; ``check_pending``
then makes a misspelt hook fail loudly. The core's own built-ins register through the same
hooks, as the plugin named ``core``.
"""

from __future__ import annotations

import importlib.metadata
import types
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy
from stevedore import ExtensionManager

from pipeline_core import hookspecs
from pipeline_core.errors import ConnectorLoadError, PluginError
from pipeline_core.plugins.registry import TypeRegistry

__all__ = ["ENTRY_POINT_GROUP", "PluginInfo", "Plugins", "load_plugins"]

ENTRY_POINT_GROUP = "pipeline.connectors"

_REGISTRATION_HOOKS = {
    "sources": "pipeline_register_sources",
    "sinks": "pipeline_register_sinks",
    "state_backends": "pipeline_register_state_backends",
    "triggers": "pipeline_register_triggers",
}


@attrs.frozen
class PluginInfo:
    """A loaded plugin: its entry-point name, module and distribution."""

    name: str
    module: str
    distribution: str
    version: str


@attrs.define
class Plugins:
    """The result of discovery: the pluggy manager, the filled registries, the failures."""

    pm: pluggy.PluginManager
    sources: TypeRegistry[Any]
    sinks: TypeRegistry[Any]
    state_backends: TypeRegistry[Any]
    triggers: TypeRegistry[Any]
    plugins: list[PluginInfo]
    failures: list[ConnectorLoadError]
    #: names of the plugin *modules* passed as ``extra`` (a worker process imports them
    #: to register the same plugins; plugin objects cannot cross a process boundary)
    extra_modules: tuple[str, ...] = ()

    @property
    def hook(self) -> Any:
        """The pluggy hook relay, for notifications: ``plugins.hook.pipeline_job_started(...)``."""
        return self.pm.hook

    def registries(self) -> dict[str, TypeRegistry[Any]]:
        return {
            "sources": self.sources,
            "sinks": self.sinks,
            "state_backends": self.state_backends,
            "triggers": self.triggers,
        }


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("pipeline")
    pm.add_hookspecs(hookspecs)
    return pm


def _distribution_index() -> dict[tuple[str, str], tuple[str, str]]:
    """(entry-point name, value) of our group → (distribution name, version).

    stevedore's cached entry points do not carry their distribution, so it is looked up
    once here; this reads metadata only and loads nothing.
    """
    index: dict[tuple[str, str], tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                index[(ep.name, ep.value)] = (dist.metadata["Name"], dist.version)
    return index


def _core_info() -> PluginInfo:
    try:
        version = importlib.metadata.version("pipeline-core")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        version = "0+unknown"
    return PluginInfo("core", "pipeline_core.builtins", "pipeline-core", version)


def _fill_registries(
    pm: pluggy.PluginManager, owners: dict[str, PluginInfo]
) -> dict[str, TypeRegistry[Any]]:
    registries: dict[str, TypeRegistry[Any]] = {
        key: TypeRegistry(key.rstrip("s").replace("_", " ")) for key in _REGISTRATION_HOOKS
    }
    # Call each plugin's hook on its own, in name order, so that the registry knows who
    # registers what (for conflict messages) and the result never depends on install order.
    plugins = {name: p for name, p in pm.list_name_plugin() if p is not None}
    for name in sorted(plugins):
        info = owners[name]
        others = [p for n, p in plugins.items() if n != name]
        for key, hook_name in _REGISTRATION_HOOKS.items():
            registry = registries[key]
            registry._set_current(info.name, info.distribution)
            try:
                pm.subset_hook_caller(hook_name, remove_plugins=others)(registry=registry)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {info.name!r} from {info.distribution} failed in {hook_name}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
    for registry in registries.values():
        registry._set_current("<direct>", "<direct>")
    return registries


def _drop_plugins_with_unknown_hooks(
    pm: pluggy.PluginManager, owners: dict[str, PluginInfo], failures: list[ConnectorLoadError]
) -> None:
    """``check_pending``: a plugin implementing a hook nobody declared (usually a typo)
    is reported as a load failure and unregistered, instead of being silently ignored."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin)
            if name is None or name == "core":
                raise PluginError(str(exc)) from exc
            pm.unregister(exc.plugin)
            info = owners.pop(name)
            failures.append(ConnectorLoadError(name, info.distribution, exc))


def load_plugins(
    *,
    entry_points: bool = True,
    extra: Iterable[types.ModuleType | object] = (),
) -> Plugins:
    """Discover and register plugins; call once per process (or per test).

    ``entry_points=False`` skips discovery and registers only the core built-ins plus
    ``extra`` (plugin modules or objects with ``@hookimpl`` methods) — what the
    ``pipeline_plugins`` test fixture uses to run with exactly the plugins a test names.
    """
    from pipeline_core import builtins

    pm = _new_manager()
    owners: dict[str, PluginInfo] = {}
    failures: list[ConnectorLoadError] = []

    core = _core_info()
    pm.register(builtins, name=core.name)
    owners[core.name] = core

    if entry_points:
        index = _distribution_index()

        def on_failure(_mgr: Any, ep: importlib.metadata.EntryPoint, err: BaseException) -> None:
            dist, _version = index.get((ep.name, ep.value), ("<unknown distribution>", ""))
            failures.append(ConnectorLoadError(ep.name, dist, err))

        mgr = ExtensionManager(
            namespace=ENTRY_POINT_GROUP,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
        )
        for ext in sorted(mgr.extensions, key=lambda e: e.name):
            ep = ext.entry_point
            dist, version = index.get((ep.name, ep.value), ("<unknown distribution>", ""))
            if ext.name in owners:
                failures.append(
                    ConnectorLoadError(
                        ext.name, dist, PluginError(f"plugin name {ext.name!r} is already taken")
                    )
                )
                continue
            try:
                pm.register(ext.plugin, name=ext.name)
            except pluggy.PluginValidationError as exc:
                failures.append(ConnectorLoadError(ext.name, dist, exc))
                continue
            owners[ext.name] = PluginInfo(ext.name, ep.value, dist, version)

    extra_modules = []
    for i, obj in enumerate(extra):
        if isinstance(obj, types.ModuleType):
            extra_modules.append(obj.__name__)
        name = getattr(obj, "__name__", None) or f"{type(obj).__name__}-{i}"
        pm.register(obj, name=name)
        module = getattr(obj, "__module__", None) or name
        owners[name] = PluginInfo(name, module, f"<in-process {name}>", "")

    _drop_plugins_with_unknown_hooks(pm, owners, failures)
    registries = _fill_registries(pm, owners)
    return Plugins(
        pm=pm,
        sources=registries["sources"],
        sinks=registries["sinks"],
        state_backends=registries["state_backends"],
        triggers=registries["triggers"],
        plugins=sorted(owners.values(), key=lambda p: p.name),
        failures=failures,
        extra_modules=tuple(extra_modules),
    )
