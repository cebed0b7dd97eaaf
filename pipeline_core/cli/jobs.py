"""``pipeline-run jobs …``: the job registry from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from rich.markup import escape

from pipeline_core.cli.output import err, out
from pipeline_core.cli.tables import fmt_time, print_json, print_table
from pipeline_core.config.converter import structure
from pipeline_core.model.schedule import ScheduleConfig

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) loads only for a command that uses it
    from pipeline_core.store import JobDefinition, MetadataStore

__all__ = ["add_arguments"]


def _store(args: argparse.Namespace, *, validate: bool = False) -> MetadataStore:
    """The store; with ``validate``, its registry checks definitions against the
    installed connectors first — the same checks as the API and ``validate``."""
    from pipeline_core.store import MetadataStore

    store = MetadataStore.open(args.database)
    if validate:
        from pipeline_core.plugins.manager import load_plugins
        from pipeline_core.runtime.validation import job_validator

        store.registry.validator = job_validator(load_plugins())
    return store


def _as_dict(d: JobDefinition) -> dict[str, object]:
    return attrs.asdict(d)


def cmd_list(args: argparse.Namespace) -> int:
    jobs = _store(args).registry.list_all()
    if args.json:
        print_json([_as_dict(d) for d in jobs])
        return 0
    print_table(
        "Jobs",
        ["name", "type", "ver", "enabled", "updated (UTC)", "description"],
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
        keep=["name", "type", "ver", "enabled", "updated (UTC)"],
        optional=["updated (UTC)", "type", "enabled"],
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
    registry = _store(args, validate=True).registry
    d = registry.register(registry.load(args.file), created_by=args.user)
    out.print(f"registered {d.job_name} (version {d.version})")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    registry = _store(args, validate=True).registry
    job = registry.load(args.file)
    d = registry.update(job.name, job, updated_by=args.user)
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
    from pipeline_core.store.registry import job_files

    registry = _store(args, validate=True).registry
    files: list[Path] = []
    for given in map(Path, args.paths):  # a missing file is reported like a bad one
        files += job_files(given) if given.is_dir() else [given]
    report = registry.import_files(files, who=args.user)
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
            out.print(
                f"[bold red]failed:[/] {escape(f'{path}: {why}')}", markup=True, soft_wrap=True
            )
    return 2 if report.failed else 0  # a bad job file exits 2, as validate and register


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


#: an instance that has not heart-beaten for this long is not serving (serve's lease)
_SERVING_LEASE = dt.timedelta(seconds=15)


def cmd_start(args: argparse.Namespace) -> int:
    """Trigger a job: a SCHEDULED execution that a running ``serve`` instance picks up.
    With no instance serving the database, nothing would: refused unless ``--queue``."""
    store = _store(args)
    store.registry.get(args.name)  # an unknown job first, whatever is serving
    live = store.instances.live(_SERVING_LEASE)
    if not live and not args.queue:
        err.print(
            f"[bold red]error:[/] no `pipeline-run serve` instance is running on this "
            f"database (none heart-beat in the last {_SERVING_LEASE.seconds} s), so nothing "
            f"would run {escape(args.name)}: start one, run the job file here with "
            "`pipeline-run run FILE`, or add --queue to record the start for the next "
            "instance",
            markup=True,
            soft_wrap=True,
        )
        return 1
    fired = store.schedules.trigger(args.name, triggered_by="MANUAL")
    out.print(fired.execution_id)
    if live:
        names = ", ".join(sorted(i.instance_name for i in live))
        err.print(f"scheduled; serving: {escape(names)}", soft_wrap=True)
    else:
        err.print("queued: it runs when a `pipeline-run serve` instance starts", soft_wrap=True)
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.remove:
        removed = store.schedules.delete(args.name)
        out.print(f"{args.name}: schedule removed" if removed else f"{args.name}: no schedule")
        return 0
    if args.cron or args.after or args.event or args.manual:
        if args.cron:
            options: dict[str, object] = {
                "type": "CRON",
                "cron": args.cron,
                "timezone": args.timezone,
            }
        elif args.after:
            options = {"type": "DEPENDENCY", "dependencies": args.after.split(",")}
        elif args.event:
            trigger, _, topic = args.event.partition(":")
            options = {"type": "EVENT", "event_trigger": trigger, "event_topic": topic}
        else:
            options = {"type": "MANUAL"}
        config = structure(options, ScheduleConfig, job=args.name, component="schedule")
        store.schedules.put(args.name, config)
    record = store.schedules.get(args.name)
    if record is None:
        out.print(f"{args.name}: no schedule (runs only when started)")
        return 0
    data = {
        **attrs.asdict(record.config),
        "next_trigger_time": record.next_trigger_time,
        "last_trigger_time": record.last_trigger_time,
    }
    if args.json:
        print_json(data)
    else:
        for key, value in data.items():
            if value not in (None, {}, ()):
                out.print(f"{key}: {_plain(value)}", soft_wrap=True, markup=False)
    return 0


def _plain(value: object) -> str:
    """A schedule's value as a person reads it: names joined by commas, yes/no, times in
    UTC saying so, an enum by its value."""
    import datetime as dt
    import enum

    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value  # stored naive UTC
        return utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    return str(value)


def add_arguments(jobs: argparse.ArgumentParser) -> None:
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

    p = js.add_parser("start", help="start a job now (a running serve instance runs it)")
    p.add_argument("name")
    p.add_argument(
        "--queue",
        action="store_true",
        help="record the start even when no serve instance is running (the next one runs it)",
    )
    p.set_defaults(func=cmd_start)

    p = js.add_parser("schedule", help="show or set when a job runs")
    p.add_argument("name")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--cron", metavar="EXPR", help="5 fields, or 6 with seconds first")
    g.add_argument("--after", metavar="JOB[,JOB]", help="run when these jobs completed")
    g.add_argument("--event", metavar="TRIGGER:TOPIC", help="e.g. rabbitmq:orders-ready")
    g.add_argument("--manual", action="store_true", help="only when started")
    g.add_argument("--remove", action="store_true", help="delete the schedule")
    p.add_argument("--timezone", default="UTC", help="IANA time zone of --cron")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_schedule)

    p = js.add_parser(
        "import", help="register or update job files: each file given, every one of a directory"
    )
    p.add_argument("paths", nargs="+", metavar="DIR|FILE")
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
