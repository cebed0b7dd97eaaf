"""``pipeline-run connectors``: what plugins were found, what they register, what failed."""

from __future__ import annotations

import argparse
from collections import defaultdict

from rich.markup import escape
from rich.table import Table

from pipeline_core.cli.output import err, out
from pipeline_core.plugins.manager import Plugins, load_plugins

__all__ = ["add_parser"]


def _types_by_plugin(plugins: Plugins) -> dict[str, dict[str, list[str]]]:
    table: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key, registry in plugins.registries().items():
        for reg in registry.registrations():
            table[reg.plugin][key].append(reg.type_name)
        for name, regs in registry.conflicts().items():
            for reg in regs:
                table[reg.plugin][key].append(f"{name} (conflict)")
    return table


def run(args: argparse.Namespace) -> int:
    plugins = load_plugins()
    types = _types_by_plugin(plugins)
    table = Table(title="Pipeline connectors (entry-point group pipeline.connectors)")
    for column in ("plugin", "distribution", "version"):
        table.add_column(column, no_wrap=True)
    for column in ("sources", "sinks", "state", "triggers"):
        table.add_column(column, overflow="fold")
    for info in plugins.plugins:
        t = types.get(info.name, {})
        table.add_row(
            info.name,
            info.distribution,
            info.version,
            *(
                ", ".join(sorted(t.get(k, []))) or "-"
                for k in ("sources", "sinks", "state_backends", "triggers")
            ),
        )
    out.print(table)
    problems = 0
    for failure in plugins.failures:
        err.print(f"[bold red]load failure:[/] {escape(str(failure))}", markup=True, soft_wrap=True)
        problems += 1
    for registry in plugins.registries().values():
        for name in registry.conflicts():
            err.print(
                f"[bold red]conflict:[/] {registry.conflict_error(name)}",
                markup=True,
                soft_wrap=True,
            )
            problems += 1
    return 1 if problems else 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("connectors", help="list installed connector plugins and what they register")
    p.set_defaults(func=run)
