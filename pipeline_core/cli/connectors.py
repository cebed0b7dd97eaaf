"""``pipeline-run connectors``: what plugins were found, what they register, what failed."""

from __future__ import annotations

import argparse
from collections import defaultdict

from rich.markup import escape

from pipeline_core.cli.output import err
from pipeline_core.cli.tables import print_json, print_table
from pipeline_core.plugins.manager import Plugins, load_plugins

__all__ = ["add_arguments"]

#: registry key → the word the listing uses for it
KINDS = {"sources": "sources", "sinks": "sinks", "state_backends": "state", "triggers": "triggers"}


def _types_by_plugin(plugins: Plugins) -> dict[str, dict[str, list[str]]]:
    table: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key, registry in plugins.registries().items():
        for reg in registry.registrations():
            table[reg.plugin][key].append(reg.type_name)
        for name, regs in registry.conflicts().items():
            for reg in regs:
                table[reg.plugin][key].append(f"{name} (conflict)")
    return table


def _conflicts(plugins: Plugins) -> list[str]:
    return [
        str(registry.conflict_error(name))
        for registry in plugins.registries().values()
        for name in registry.conflicts()
    ]


def run(args: argparse.Namespace) -> int:
    plugins = load_plugins()
    types = _types_by_plugin(plugins)
    conflicts = _conflicts(plugins)
    if args.json:
        print_json(
            {
                "plugins": [
                    {
                        "name": info.name,
                        "module": info.module,
                        "distribution": info.distribution,
                        "version": info.version,
                        **{k: sorted(types.get(info.name, {}).get(k, [])) for k in KINDS},
                    }
                    for info in plugins.plugins
                ],
                "load_failures": [
                    {"name": f.name, "distribution": f.distribution, "error": str(f)}
                    for f in plugins.failures
                ],
                "conflicts": conflicts,
            }
        )
    else:
        # One "types" column (not one per kind): at 80 columns four narrow columns
        # would cut type names in pieces.
        print_table(
            "Pipeline connectors (entry-point group pipeline.connectors)",
            ["plugin", "distribution", "version", "types"],
            [
                (
                    info.name,
                    info.distribution,
                    info.version,
                    "; ".join(
                        f"{word}: {', '.join(sorted(names))}"
                        for key, word in KINDS.items()
                        if (names := types.get(info.name, {}).get(key))
                    )
                    or None,
                )
                for info in plugins.plugins
            ],
            keep=["plugin", "distribution", "version"],
            optional=["version"],
        )
    for failure in plugins.failures:
        err.print(f"[bold red]load failure:[/] {escape(str(failure))}", markup=True, soft_wrap=True)
    for conflict in conflicts:
        err.print(f"[bold red]conflict:[/] {escape(conflict)}", markup=True, soft_wrap=True)
    return 1 if plugins.failures or conflicts else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    p.set_defaults(func=run)
