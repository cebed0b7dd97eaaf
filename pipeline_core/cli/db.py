"""``pipeline-run db upgrade | current``."""

from __future__ import annotations

import argparse

from pipeline_core.cli.output import out

__all__ = ["add_arguments"]


def run_upgrade(args: argparse.Namespace) -> int:
    from pipeline_core.store.engine import database_url, make_engine, safe_url
    from pipeline_core.store.migrate import upgrade

    url = database_url(args.database)
    engine = make_engine(url)
    before, after = upgrade(engine)
    if before == after:
        out.print(f"{safe_url(url)}: schema is up to date (revision {after})")
    else:
        out.print(f"{safe_url(url)}: schema upgraded from {before or 'nothing'} to {after}")
    engine.dispose()
    return 0


def run_current(args: argparse.Namespace) -> int:
    from pipeline_core.store.engine import database_url, make_engine, safe_url
    from pipeline_core.store.migrate import current_revision, head_revision

    url = database_url(args.database)
    engine = make_engine(url)
    current, head = current_revision(engine), head_revision()
    state = "up to date" if current == head else "run `pipeline-run db upgrade`"
    out.print(f"{safe_url(url)}: revision {current or 'none'} (this release needs {head}: {state})")
    engine.dispose()
    return 0 if current == head else 1


def add_arguments(db: argparse.ArgumentParser) -> None:
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    dbsub.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=run_upgrade)
    dbsub.add_parser("current", help="show the schema revision").set_defaults(func=run_current)
