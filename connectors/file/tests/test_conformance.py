"""The file connector against the Source/Sink conformance classes of pipeline_core.testing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from pipeline_connector_file import FileSink, FileSource
from pipeline_core.testing.conformance import SinkConformance, SourceConformance


class TestFileSourceConformance(SourceConformance):
    source_cls = FileSource

    def config(self, tmp_path: Path) -> dict[str, Any]:
        for name, start in (("a.jsonl", 0), ("b.jsonl", 9)):
            (tmp_path / name).write_bytes(
                b"".join(orjson.dumps({"n": n}) + b"\n" for n in range(start, start + 9))
            )
        return {"path": str(tmp_path / "*.jsonl")}

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"path": "in.jsonl", "format": "xml"}, "format"


class TestFileSinkConformance(SinkConformance):
    sink_cls = FileSink

    def config(self, tmp_path: Path) -> dict[str, Any]:
        return {"path": str(tmp_path / "out"), "max_records_per_file": 7}

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"path": "out", "compression": "zip"}, "compression"

    def read_back(self, tmp_path: Path, options: dict[str, Any]) -> list[Any]:
        return [
            orjson.loads(line)
            for f in sorted(Path(options["path"]).glob("*.jsonl"))
            for line in f.read_bytes().splitlines()
        ]
