"""``pipeline-run jobs …``: the job registry from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs

from pipeline_core.cli.output import out
from pipeline_core.cli.tables import fmt_time, print_json, print_table
from pipeline_core.model.loader import load_job_file
from pipeline_core.store import JobDefinition, MetadataStore

__all__ = ["add_parser"]


def _store(args: argparse.Namespace) -> MetadataStore:
    return MetadataStore.open(args.database)


def _as_dict(d: JobDefinition) -> dict[str, object]:
    return attrs.asdict(d)


def cmd_list(args: argparse.Namespace) -> int:
    jobs = _store(args).registry.list_all()
    if args.json:
        print_json([_as_dict(d) for d in jobs])
        return 0
    print_table(
        "Jobs",
        ["name", "type", "version", "enabled", "updated (UTC)", "description"],
        [
            (
                d.job_name,
                d.job_type,
                d.version,
                "yes" if d.enabled else "no",
                fmt_time(d.update_time),
                d.description,
            )
            for d in jobs
        ],
        keep=["name", "type", "version", "updated (UTC)"],
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    registry = _store(args).registry
    d = registry.get(args.name, args.version)
    if args.json:
        print_json(_as_dict(d))
        return 0
    out.print(
        f"[bold]{d.job_name}[/] version {d.version} of {d.latest_version} · {d.job_type} · "
        f"{'enabled' if d.enabled else 'disabled'} · created {fmt_time(d.create_time)}"
        f"{' by ' + d.created_by if d.created_by else ''}",
        markup=True,
    )
    if d.config:
        out.print("config overrides (pipeline_job_config):")
        for key, value in d.config.items():
            out.print(f"  {key} = {value!r}")
    out.print(registry.export(args.name, args.version), markup=False, highlight=False)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    d = _store(args).registry.register(load_job_file(args.file), created_by=args.user)
    out.print(f"registered {d.job_name} (version {d.version})")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    job = load_job_file(args.file)
    d = _store(args).registry.update(job.name, job, updated_by=args.user)
    out.print(f"updated {d.job_name} (now version {d.version})")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    _store(args).registry.enable(args.name)
    out.print(f"enabled {args.name}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    _store(args).registry.disable(args.name)
    out.print(f"disabled {args.name}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    report = _store(args).registry.import_directory(args.directory, who=args.user)
    if args.json:
        print_json(attrs.asdict(report))
    else:
        for label, names in (
            ("added", report.added),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
        ):
            out.print(f"{label}: {', '.join(names) if names else '-'}")
        for path, why in report.failed.items():
            out.print(f"[bold red]failed:[/] {path}: {why}", markup=True, soft_wrap=True)
    return 1 if report.failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    text = _store(args).registry.export(args.name, args.version)
    if args.output:
        Path(args.output).write_text(text)
        out.print(f"wrote {args.output}")
    else:
        out.print(text, markup=False, highlight=False, end="")
    return 0


def cmd_set_config(args: argparse.Namespace) -> int:
    value: object = args.value
    if args.type is None and args.value.lstrip("-").isdigit():
        value = int(args.value)
    _store(args).registry.set_config(args.name, args.key, value, config_type=args.type)
    out.print(f"{args.name}: {args.key} = {value!r}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = sub.add_parser("jobs", help="the job registry")
    js = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")

    p = js.add_parser("list", help="list registered jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = js.add_parser("show", help="show a job (latest or a given version)")
    p.add_argument("name")
    p.add_argument("--version", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    for name, func, helptext in (
        ("register", cmd_register, "register a new job from a YAML/JSON file"),
        ("update", cmd_update, "add a new version of a job from a file"),
    ):
        p = js.add_parser(name, help=helptext)
        p.add_argument("file")
        p.add_argument("--user", help="recorded as created_by / updated_by")
        p.set_defaults(func=func)

    for name, func in (("enable", cmd_enable), ("disable", cmd_disable)):
        p = js.add_parser(name, help=f"{name} a job")
        p.add_argument("name")
        p.set_defaults(func=func)

    p = js.add_parser("import", help="register or update every job file in a directory")
    p.add_argument("directory")
    p.add_argument("--user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)

    p = js.add_parser("export", help="write a job's definition as YAML")
    p.add_argument("name")
    p.add_argument("--version", type=int)
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_export)

    p = js.add_parser("set-config", help="override one config setting (pipeline_job_config)")
    p.add_argument("name")
    p.add_argument("key", help="e.g. source.batch.size, backpressure.strategy")
    p.add_argument("value")
    p.add_argument("--type", choices=["STRING", "INT", "BOOLEAN", "JSON"])
    p.set_defaults(func=cmd_set_config)
