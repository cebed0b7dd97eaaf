"""docs/connectors/jdbc.md documents every option (so it cannot silently drift)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from pipeline_connector_jdbc import JdbcSinkConfig, JdbcSourceConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "connectors" / "jdbc.md"


@pytest.mark.parametrize("cls", [JdbcSourceConfig, JdbcSinkConfig])
def test_every_option_is_documented(cls: type) -> None:
    section = DOC.read_text().split("## Sink options")[0 if cls is JdbcSourceConfig else 1]
    assert [f.name for f in attrs.fields(cls) if f"| `{f.name}` |" not in section] == []
