"""docs/connectors/http.md documents every option (so it cannot silently drift)."""

from __future__ import annotations

from pathlib import Path

import attrs

from pipeline_connector_http import (
    AuthConfig,
    HttpSinkConfig,
    HttpSourceConfig,
    PaginationConfig,
    RetryConfig,
)

DOC = (Path(__file__).resolve().parents[3] / "docs" / "connectors" / "http.md").read_text()


def test_every_option_is_documented() -> None:
    source, sink = DOC.split("## Sink options")
    for cls, text in [
        (HttpSourceConfig, source.split("### `pagination`")[0]),
        (PaginationConfig, source.split("### `pagination`")[1].split("### `retry`")[0]),
        (RetryConfig, source.split("### `retry`")[1].split("### `auth`")[0]),
        (AuthConfig, source.split("### `auth`")[1]),
        (HttpSinkConfig, sink),
    ]:
        missing = [f.name for f in attrs.fields(cls) if f"| `{f.name}` |" not in text]
        assert missing == [], cls.__name__
