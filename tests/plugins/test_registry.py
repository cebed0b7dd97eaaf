"""Registration through hooks: conflicts, misspelt hooks, missing attributes."""

from __future__ import annotations

import subprocess
import sys
import types
from typing import Any

import attrs
import pytest

from pipeline_core import (
    ConnectorConflict,
    ConnectorNotFound,
    PluginError,
    Sink,
    hookimpl,
    load_plugins,
)


@attrs.define(frozen=True)
class NoConfig:
    pass


def make_sink(name: str) -> type[Sink[Any]]:
    class _S(Sink[Any]):
        type_name = name
        config_cls = NoConfig

        async def write(self, records: list[Any]) -> None:
            pass

    return _S


def plugin(name: str, **hooks: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def sinks_plugin(name: str, *classes: type) -> types.ModuleType:
    def pipeline_register_sinks(registry: Any) -> None:
        for cls in classes:
            registry.add(cls)

    return plugin(name, pipeline_register_sinks=pipeline_register_sinks)


def test_builtins_register_through_the_same_hooks() -> None:
    plugins = load_plugins(entry_points=False)
    assert plugins.state_backends.names() == ["lmdb", "memory"]
    assert [p.name for p in plugins.plugins] == ["core"]
    for reg in plugins.state_backends.registrations():
        assert (reg.plugin, reg.distribution) == ("core", "pipeline-core")


def test_same_type_from_two_plugins_is_a_conflict_naming_both() -> None:
    a, b = sinks_plugin("alpha", make_sink("dup")), sinks_plugin("beta", make_sink("dup"))
    plugins = load_plugins(entry_points=False, extra=[b, a])
    with pytest.raises(ConnectorConflict) as info:
        plugins.sinks.get("dup")
    msg = str(info.value)
    assert "<in-process alpha> (plugin 'alpha')" in msg
    assert "<in-process beta> (plugin 'beta')" in msg
    assert "dup" not in plugins.sinks.names()


def test_conflict_does_not_depend_on_order() -> None:
    a, b = sinks_plugin("alpha", make_sink("dup")), sinks_plugin("beta", make_sink("dup"))
    one = load_plugins(entry_points=False, extra=[a, b])
    two = load_plugins(entry_points=False, extra=[b, a])
    assert str(one.sinks.conflict_error("dup")) == str(two.sinks.conflict_error("dup"))


def test_unknown_type_lists_installed_ones() -> None:
    plugins = load_plugins(
        entry_points=False, extra=[sinks_plugin("p", make_sink("x"), make_sink("y"))]
    )
    with pytest.raises(
        ConnectorNotFound, match=r"unknown sink type 'z' \(installed sink types: x, y;"
    ):
        plugins.sinks.get("z")


def test_misspelt_hook_is_a_reported_failure_not_silence() -> None:
    bad = plugin("typo", pipeline_register_sink=lambda registry: None)
    good = sinks_plugin("fine", make_sink("ok"))
    plugins = load_plugins(entry_points=False, extra=[bad, good])
    assert plugins.sinks.names() == ["ok"]
    assert len(plugins.failures) == 1
    assert "pipeline_register_sink" in str(plugins.failures[0])
    assert plugins.failures[0].name == "typo"


def test_class_without_type_name_or_config_is_rejected() -> None:
    class NoName(Sink[Any]):
        config_cls = NoConfig

        async def write(self, records: list[Any]) -> None:
            pass

    with pytest.raises(PluginError, match="has no type_name"):
        load_plugins(entry_points=False, extra=[sinks_plugin("p", NoName)])


# --- registration by reference: nothing imported until used ------------------------------


def test_discovery_imports_no_connector_client_library() -> None:
    """Finding the installed connectors must not import what only a job using one needs
    (start-up of every command pays for it otherwise)."""
    code = (
        "import sys; from pipeline_core import load_plugins; p = load_plugins();"
        "assert {'file', 'http', 'jdbc', 'kafka', 'rabbitmq'} <= set(p.sinks.names());"
        "print(sorted(m for m in ('aiokafka', 'httpx', 'pika', 'pymysql', 'sqlalchemy')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_class_registered_by_reference_loads_when_used() -> None:
    def pipeline_register_sinks(registry: Any) -> None:
        registry.add("tests.plugins.test_registry:NamedSink", type_name="named")

    plugins = load_plugins(
        entry_points=False, extra=[plugin("lazy", pipeline_register_sinks=pipeline_register_sinks)]
    )
    (reg,) = [r for r in plugins.sinks.registrations() if r.type_name == "named"]
    assert reg.resolved is None
    assert plugins.sinks.get("named").__name__ == "NamedSink"
    assert reg.resolved is not None


def test_a_reference_that_does_not_load_names_the_plugin_and_the_reference() -> None:
    def pipeline_register_sinks(registry: Any) -> None:
        registry.add("no_such_module_here:Sink", type_name="ghost")

    plugins = load_plugins(
        entry_points=False,
        extra=[plugin("haunted", pipeline_register_sinks=pipeline_register_sinks)],
    )
    assert "ghost" in plugins.sinks.names()  # listed: discovery imported nothing
    with pytest.raises(PluginError) as info:
        plugins.sinks.get("ghost")
    msg = str(info.value)
    assert "'ghost' of plugin 'haunted'" in msg and "no_such_module_here:Sink" in msg
    assert "ModuleNotFoundError" in msg
    assert len(plugins.sinks.load_all()) == 1


def test_a_reference_without_type_name_is_rejected() -> None:
    def pipeline_register_sinks(registry: Any) -> None:
        registry.add("tests.plugins.test_registry:NamedSink")

    with pytest.raises(PluginError, match="needs type_name"):
        load_plugins(
            entry_points=False, extra=[plugin("p", pipeline_register_sinks=pipeline_register_sinks)]
        )


class NamedSink(Sink[Any]):
    type_name = "named"
    config_cls = NoConfig

    async def write(self, records: list[Any]) -> None:
        pass
