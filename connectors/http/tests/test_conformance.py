"""The HTTP connector against the Source/Sink conformance classes (loopback test API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_test_api import Api

from pipeline_connector_http import HttpSink, HttpSource
from pipeline_core.testing.conformance import SinkConformance, SourceConformance

_API: list[Api] = []


@pytest.fixture(autouse=True)
def api() -> Iterator[Api]:
    with Api(n=23) as a:
        _API[:] = [a]
        yield a


class TestHttpSourceConformance(SourceConformance):
    source_cls = HttpSource

    def config(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "url": f"{_API[0].base}/page",
            "records_path": "data",
            "pagination": {"style": "page", "page_size": 5},
        }

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"url": "ftp://x", "records_path": "data"}, "url"

    def released(self, source: Any) -> bool:
        return source.client is None or source.client.is_closed


class TestHttpSinkConformance(SinkConformance):
    sink_cls = HttpSink

    def config(self, tmp_path: Path) -> dict[str, Any]:
        return {"url": f"{_API[0].base}/collect", "mode": "batch"}

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"url": "http://x", "mode": "stream"}, "mode"

    def read_back(self, tmp_path: Path, options: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for body in _API[0].received:
            out.extend(body if isinstance(body, list) else [body])
        return out
