"""docs/connectors/kafka.md documents every option (so it cannot silently drift)."""

from __future__ import annotations

from pathlib import Path

from pipeline_connector_kafka import KafkaSinkConfig, KafkaSourceConfig, KafkaTriggerConfig
from pipeline_core.testing import assert_options_documented

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
        assert_options_documented(text, cls)
