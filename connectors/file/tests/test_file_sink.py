"""The file sink: rolling, formats, and atomic two-phase publishing."""

from __future__ import annotations

import asyncio
import csv
import gzip
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline_connector_file import FileSink, FileSinkConfig
from pipeline_core import FatalConnectorError, RuntimeContext

CTX = RuntimeContext(job_name="t", execution_id="abcdef1234", component="sink (file)")


def drive(sink: FileSink, *steps: Callable[[FileSink], Awaitable[Any]]) -> None:
    async def go() -> None:
        await sink.open(CTX)
        for step in steps:
            await step(sink)

    asyncio.run(go())


def visible(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if not p.name.startswith("."))


def hidden(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.name.startswith("."))


def read_jsonl(paths: list[Path]) -> list[Any]:
    out = []
    for p in paths:
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        out += [orjson.loads(line) for line in data.splitlines()]
    return out


def write(records: list[Any]) -> Callable[[FileSink], Awaitable[None]]:
    return lambda s: s.write(records)


async def commit(sink: FileSink, checkpoint_id: int = 1) -> None:
    await sink.prepare_commit(checkpoint_id)
    await sink.on_checkpoint_complete(checkpoint_id)


def test_rolls_by_record_count(tmp_path: Path) -> None:
    sink = FileSink(FileSinkConfig(path=str(tmp_path), max_records_per_file=100))
    recs = [{"i": i} for i in range(350)]
    drive(sink, write(recs[:130]), write(recs[130:]), commit, lambda s: s.close())
    files = visible(tmp_path)
    assert [p.name for p in files] == [f"part-abcdef12-{i:05d}.jsonl" for i in range(4)]
    assert [len(p.read_bytes().splitlines()) for p in files] == [100, 100, 100, 50]
    assert read_jsonl(files) == recs
    assert hidden(tmp_path) == []


def test_rolls_by_size_and_never_exceeds_it(tmp_path: Path) -> None:
    sink = FileSink(FileSinkConfig(path=str(tmp_path), max_bytes_per_file=1000))
    recs = [{"i": i, "pad": "x" * (i % 40)} for i in range(300)]
    drive(sink, write(recs[:77]), write(recs[77:]), commit, lambda s: s.close())
    files = visible(tmp_path)
    assert len(files) > 5
    assert all(p.stat().st_size <= 1000 for p in files)
    assert read_jsonl(files) == recs


def test_gzip_output(tmp_path: Path) -> None:
    sink = FileSink(FileSinkConfig(path=str(tmp_path), compression="gzip", max_records_per_file=40))
    recs = [{"i": i} for i in range(100)]
    drive(sink, write(recs), commit, lambda s: s.close())
    files = visible(tmp_path)
    assert [p.name.endswith(".jsonl.gz") for p in files] == [True, True, True]
    assert read_jsonl(files) == recs


def test_csv_output_with_header_per_file(tmp_path: Path) -> None:
    sink = FileSink(FileSinkConfig(path=str(tmp_path), format="csv", max_records_per_file=2))
    recs = [{"id": 1, "note": "a, b"}, {"id": 2, "note": 'say "hi"'}, {"id": 3, "note": "x\ny"}]
    drive(sink, write(recs), commit, lambda s: s.close())
    rows = []
    for p in visible(tmp_path):
        with open(p, newline="") as f:
            rows += list(csv.DictReader(f))
    assert rows == [{"id": str(r["id"]), "note": r["note"]} for r in recs]


def test_csv_rejects_records_that_do_not_fit(tmp_path: Path) -> None:
    sink = FileSink(FileSinkConfig(path=str(tmp_path), format="csv", csv_fields=["a"]))
    with pytest.raises(FatalConnectorError, match="fields not in the CSV columns: \\['b'\\]"):
        drive(sink, write([{"a": 1, "b": 2}]))
    with pytest.raises(FatalConnectorError, match="does not fit the CSV columns"):
        drive(
            FileSink(FileSinkConfig(path=str(tmp_path), format="csv", csv_fields=["a"])),
            write([{"z": 1}]),
        )


def test_unserialisable_record_is_named(tmp_path: Path) -> None:
    sink = FileSink(FileSinkConfig(path=str(tmp_path)))
    with pytest.raises(FatalConnectorError, match="cannot write record .*object.* as JSON"):
        drive(sink, write([{"ok": 1}, {"bad": object()}]))


def test_nothing_is_visible_before_commit_and_close_discards_it(tmp_path: Path) -> None:
    sink = FileSink(FileSinkConfig(path=str(tmp_path), max_records_per_file=10))
    seen: dict[str, Any] = {}

    async def look(_s: FileSink) -> None:
        seen["visible"] = visible(tmp_path)
        seen["hidden"] = [p.name for p in hidden(tmp_path)]

    async def prepare_only(s: FileSink) -> None:
        seen["prepared"] = await s.prepare_commit(7)
        seen["after_prepare"] = visible(tmp_path)

    drive(sink, write([{"i": i} for i in range(25)]), look, prepare_only, lambda s: s.close())
    assert seen["visible"] == []
    assert seen["hidden"] == [  # the attempt's lock, two rolled parts and the open one
        ".part-abcdef12-00000.jsonl.inprogress",
        ".part-abcdef12-00001.jsonl.inprogress",
        ".part-abcdef12-00002.jsonl.inprogress",
        ".part-abcdef12.lock",
    ]
    assert len(seen["prepared"]["files"]) == 3
    assert seen["after_prepare"] == []  # prepared is not committed
    assert list(tmp_path.iterdir()) == []  # close without commit leaves nothing at all


def test_commit_publishes_only_prepared_checkpoints(tmp_path: Path) -> None:
    sink = FileSink(FileSinkConfig(path=str(tmp_path)))

    async def two_checkpoints(s: FileSink) -> None:
        await s.write([{"i": 1}])
        await s.prepare_commit(1)
        await s.write([{"i": 2}])
        await s.prepare_commit(2)
        await s.on_checkpoint_complete(1)  # checkpoint 2 is not complete yet
        assert read_jsonl(visible(tmp_path)) == [{"i": 1}]
        await s.close()

    drive(sink, two_checkpoints)
    assert read_jsonl(visible(tmp_path)) == [{"i": 1}]
    assert hidden(tmp_path) == []


def test_output_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FatalConnectorError, match="cannot create output directory"):
        drive(FileSink(FileSinkConfig(path=str(blocker / "sub"))))
