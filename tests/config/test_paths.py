"""One rule for relative paths (docs/cli.md, "Relative paths"): a job file's path fields
resolve from the job file's folder; a job without a folder keeps them as given."""

from __future__ import annotations

from pathlib import Path

import attrs

from pipeline_core.config.paths import resolve_paths


@attrs.define(frozen=True, kw_only=True)
class Cfg:
    path: str | list[str] = attrs.field(metadata={"path": True})
    url: str = attrs.field(default="", metadata={"path": "sqlite-url"})
    name: str = "x/y"  # not a path field: never touched


def test_relative_paths_join_the_job_folder_absolute_ones_stay() -> None:
    got = resolve_paths({"path": "data/in.jsonl", "name": "a/b"}, Cfg, "/jobs")
    assert got == {"path": "/jobs/data/in.jsonl", "name": "a/b"}
    assert resolve_paths({"path": "/abs/in.jsonl"}, Cfg, "/jobs") == {"path": "/abs/in.jsonl"}
    listed = resolve_paths({"path": ["a/*.csv", "/b.csv"]}, Cfg, "/jobs")
    assert listed == {"path": ["/jobs/a/*.csv", "/b.csv"]}


def test_sqlite_urls_resolve_other_urls_and_references_stay() -> None:
    def url(value: str) -> str:
        return str(resolve_paths({"path": "p", "url": value}, Cfg, "/jobs")["url"])

    assert url("sqlite:///out/orders.db") == "sqlite:////jobs/out/orders.db"
    assert url("sqlite+pysqlite:///o.db") == "sqlite+pysqlite:////jobs/o.db"
    assert url("sqlite:////abs/o.db") == "sqlite:////abs/o.db"
    assert url("sqlite:///:memory:") == "sqlite:///:memory:"
    assert url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    ref = resolve_paths({"path": "${env:IN_DIR}/x"}, Cfg, "/jobs")
    assert ref == {"path": "${env:IN_DIR}/x"}


def test_a_job_without_a_folder_keeps_its_paths(tmp_path: Path) -> None:
    config = {"path": "data/in.jsonl"}
    assert resolve_paths(config, Cfg, None) is config
