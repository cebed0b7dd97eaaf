"""The jdbc connector against the Source/Sink conformance classes (SQLite here; the rest
of the jdbc tests run on PostgreSQL too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from pipeline_connector_jdbc import JdbcSink, JdbcSource
from pipeline_core.testing.conformance import SinkConformance, SourceConformance


def _table(url: str, rows: list[dict[str, Any]] | None = None) -> Table:
    engine = create_engine(url)
    md = MetaData()
    table = Table("items", md, Column("id", Integer, primary_key=True), Column("s", String(20)))
    md.create_all(engine)
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(table), rows)
    engine.dispose()
    return table


class TestJdbcTableSourceConformance(SourceConformance):
    source_cls = JdbcSource

    def config(self, tmp_path: Path) -> dict[str, Any]:
        url = f"sqlite:///{tmp_path / 'src.db'}"
        _table(url, [{"id": i, "s": f"v{i}"} for i in range(1, 19)])
        return {"url": url, "table": "items", "key": "id", "page_size": 5}

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"url": "sqlite:///x.db", "table": "items", "page_size": 0}, "page_size"


class TestJdbcSinkConformance(SinkConformance):
    sink_cls = JdbcSink

    def config(self, tmp_path: Path) -> dict[str, Any]:
        url = f"sqlite:///{tmp_path / 'dst.db'}"
        _table(url)
        return {"url": url, "table": "items", "exactly_once": True}

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"url": "sqlite:///x.db", "table": "items", "mode": "merge"}, "mode"

    def records(self, start: int, count: int) -> list[Any]:
        return [{"id": n, "s": f"v{n}"} for n in range(start, start + count)]

    def read_back(self, tmp_path: Path, options: dict[str, Any]) -> list[Any]:
        engine = create_engine(options["url"])
        table = _table(options["url"])
        with engine.connect() as conn:
            out = [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]
        engine.dispose()
        return out
