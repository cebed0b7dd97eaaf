"""docs/connectors/kafka.md documents every option (so it cannot silently drift)."""

from __future__ import annotations

from pathlib import Path

import attrs

from pipeline_connector_kafka import KafkaSinkConfig, KafkaSourceConfig, KafkaTriggerConfig

DOC = (Path(__file__).resolve().parents[3] / "docs" / "connectors" / "kafka.md").read_text()


def test_every_option_is_documented_with_its_default() -> None:
    source = DOC.split("## Source options")[1].split("## Sink options")[0]
    sink = DOC.split("## Sink options")[1].split("## EVENT trigger")[0]
    trigger = DOC.split("### Trigger options")[1]
    for cls, text in [
        (KafkaSourceConfig, source),
        (KafkaSinkConfig, sink),
        (KafkaTriggerConfig, trigger),
    ]:
        for field in attrs.fields(cls):
            row = next((x for x in text.splitlines() if x.startswith(f"| `{field.name}` |")), None)
            assert row is not None, f"{cls.__name__}.{field.name} is not documented"
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()
            if isinstance(default, bool):
                assert f"`{str(default).lower()}`" in row, row
            elif isinstance(default, int | str) and default not in ("",):
                assert str(default) in row, row
