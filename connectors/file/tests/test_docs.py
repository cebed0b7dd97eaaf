"""docs/connectors/file.md documents every option (so it cannot silently drift)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from pipeline_connector_file import FileSinkConfig, FileSourceConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "connectors" / "file.md"


@pytest.mark.parametrize("cls", [FileSourceConfig, FileSinkConfig])
def test_every_option_is_documented(cls: type) -> None:
    text = DOC.read_text()
    section = text.split("## Sink options")[0 if cls is FileSourceConfig else 1]
    missing = [f.name for f in attrs.fields(cls) if f"| `{f.name}` |" not in section]
    assert missing == []
