"""Entry point of ``pipeline-run``: one command, subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Sequence

from pipeline_core import __version__

__all__ = ["build_parser", "main", "parse_args"]

#: Each command's module and one-line summary. A module is imported only when its
#: command is given (as pip does): what it imports is what that command needs, and the
#: list below is all that ``pipeline-run --help`` needs. Each module defines
#: ``add_arguments(parser)``, which also sets ``func``, the command itself.
COMMANDS = {
    "run": ("pipeline_core.cli.run", "run a job file in the foreground"),
    "validate": ("pipeline_core.cli.validate", "check job files without running them"),
    "connectors": (
        "pipeline_core.cli.connectors",
        "list installed connector plugins and what they register",
    ),
    "jobs": ("pipeline_core.cli.jobs", "the job registry"),
    "executions": ("pipeline_core.cli.executions", "list recorded executions, newest first"),
    "checkpoints": ("pipeline_core.cli.checkpoints", "checkpoints and savepoints"),
    "db": ("pipeline_core.cli.db", "the metadata database schema"),
    "serve": ("pipeline_core.cli.serve", "run the scheduler and executor until stopped"),
    "new-connector": (
        "pipeline_core.cli.scaffold",
        "create a connector distribution to start from",
    ),
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser of ``pipeline-run``, with the arguments of ``commands`` (default: all
    of them; their modules are imported). Any other command is only a name and its
    summary, which takes no ``--help`` of its own and accepts any argument."""
    parser = argparse.ArgumentParser(
        prog="pipeline-run", description="Run and inspect Pipeline Framework jobs."
    )
    parser.add_argument("--version", action="version", version=f"pipeline-run {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--database",
        metavar="URL",
        help="metadata database URL (default: $PIPELINE_DATABASE_URL, else SQLite in .pipeline/)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    defined = set(COMMANDS) if commands is None else set(commands)
    for name, (module, summary) in COMMANDS.items():
        if name in defined:
            importlib.import_module(module).add_arguments(sub.add_parser(name, help=summary))
        else:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line parsed in two passes: the first finds the command (and answers
    ``pipeline-run --help`` from the summaries alone), the second imports that command's
    module and parses its arguments."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = build_parser(()).parse_known_args(argv)[0].command
    return build_parser([command]).parse_args(argv)


def _similar_jobs(args: argparse.Namespace, message: str) -> str:
    """A "did you mean" for a mistyped job name: the registered names close to it."""
    name = getattr(args, "name", None) or getattr(args, "job", None)
    if not isinstance(name, str) or repr(name) not in message:
        return ""
    from pipeline_core.errors import PipelineError, did_you_mean
    from pipeline_core.store import MetadataStore

    try:
        names = [d.job_name for d in MetadataStore.open(args.database).registry.list_all()]
    except PipelineError:
        return ""
    return did_you_mean(name, [n for n in names if n != name])  # a missing version: none


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)  # --help and usage errors end here, before a command's imports
    from pipeline_core.errors import ConfigError, JobNotFound, PipelineError

    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be caught
    except BrokenPipeError:
        return _stdout_closed()
    except PipelineError as exc:
        from pipeline_core.cli.output import print_error  # rich: only to report a problem

        if isinstance(exc, JobNotFound):
            print_error(JobNotFound(f"{exc}{_similar_jobs(args, str(exc))}"))
            return 1
        print_error(exc)
        return 2 if isinstance(exc, ConfigError) else 1
    return code


def _stdout_closed() -> int:
    """The reader of stdout went away (``pipeline-run … | head -1``): stop quietly, as
    Python's documentation recommends — stdout pointed at devnull so that the flush at
    exit raises nothing, and 141 (128 + SIGPIPE) as a shell reports a killed writer."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


if __name__ == "__main__":
    sys.exit(main())
