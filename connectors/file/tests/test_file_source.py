"""The file source: formats, listing, bad lines, and exact resume from every position."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline_connector_file import FileSource, FileSourceConfig
from pipeline_core import Batch, FatalConnectorError, RuntimeContext


def read_all(
    config: FileSourceConfig, position: dict[str, Any] | None = None, batch_size: int = 4
) -> list[Batch]:
    async def go() -> list[Batch]:
        src = FileSource(config)
        ctx = RuntimeContext(
            job_name="t", execution_id="e1", component="source (file)", batch_size=batch_size
        )
        await src.open(ctx, position)
        try:
            return [b async for b in src.read()]
        finally:
            await src.close()

    return asyncio.run(go())


def records(batches: list[Batch]) -> list[Any]:
    return [r for b in batches for r in b.records]


def write_jsonl(path: Path, rows: list[Any], compress: bool = False) -> None:
    data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    path.write_bytes(gzip.compress(data) if compress else data)


CSV_TEXT = (
    'id,name,note\n1,ada,"first, with comma"\n2,grace,"two\nlines"\n'
    '3,linus,plain\n\n4,ken,"quote ""inside"""\n5,dennis,last\n'
)
CSV_ROWS = [
    {"id": "1", "name": "ada", "note": "first, with comma"},
    {"id": "2", "name": "grace", "note": "two\nlines"},
    {"id": "3", "name": "linus", "note": "plain"},
    {"id": "4", "name": "ken", "note": 'quote "inside"'},
    {"id": "5", "name": "dennis", "note": "last"},
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rows = [{"n": i, "s": "é" * (i % 3)} for i in range(23)]
    out = {
        "jsonl": tmp_path / "a.jsonl",
        "gzip": tmp_path / "b.jsonl.gz",
        "csv": tmp_path / "c.csv",
        "text": tmp_path / "d.txt",
    }
    write_jsonl(out["jsonl"], rows)
    write_jsonl(out["gzip"], rows, compress=True)
    out["csv"].write_text(CSV_TEXT)
    out["text"].write_text("".join(f"line {i}\r\n" for i in range(11)))
    return out


def test_formats_are_inferred_and_read(files: dict[str, Path]) -> None:
    expected_rows = [{"n": i, "s": "é" * (i % 3)} for i in range(23)]
    assert records(read_all(FileSourceConfig(path=str(files["jsonl"])))) == expected_rows
    assert records(read_all(FileSourceConfig(path=str(files["gzip"])))) == expected_rows
    assert records(read_all(FileSourceConfig(path=str(files["csv"])))) == CSV_ROWS
    assert records(read_all(FileSourceConfig(path=str(files["text"])))) == [
        f"line {i}" for i in range(11)
    ]


@pytest.mark.parametrize("kind", ["jsonl", "gzip", "csv", "text"])
def test_resume_from_every_batch_position_is_exact(files: dict[str, Path], kind: str) -> None:
    config = FileSourceConfig(path=str(files[kind]))
    batches = read_all(config, batch_size=2)
    everything = records(batches)
    assert len(batches) >= 3
    seen = 0
    for batch in batches:
        seen += len(batch.records)
        assert batch.position is not None
        assert batch.position["total_read"] == seen
        rest = records(read_all(config, batch.position, batch_size=2))
        assert rest == everything[seen:], (kind, batch.position)


def test_glob_and_directory_read_in_sorted_order_skipping_hidden(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "2.jsonl", [2])
    write_jsonl(tmp_path / "1.jsonl", [1])
    write_jsonl(tmp_path / "sub" / "3.jsonl", [3])
    write_jsonl(tmp_path / ".part-x.jsonl.inprogress", [99])  # a sink's unfinished file
    assert records(read_all(FileSourceConfig(path=str(tmp_path)))) == [1, 2]
    assert records(read_all(FileSourceConfig(path=str(tmp_path), recursive=True))) == [1, 2, 3]
    assert records(read_all(FileSourceConfig(path=str(tmp_path / "*.jsonl")))) == [1, 2]
    assert records(
        read_all(FileSourceConfig(path=[str(tmp_path / "2.jsonl"), str(tmp_path / "sub")]))
    ) == [2, 3]


def test_resume_across_files_and_with_new_files(tmp_path: Path) -> None:
    for i in range(3):
        write_jsonl(tmp_path / f"{i}.jsonl", [i * 10 + j for j in range(5)])
    config = FileSourceConfig(path=str(tmp_path))
    batches = read_all(config, batch_size=3)
    mid = batches[2].position  # inside 1.jsonl
    assert mid is not None and mid["file"].endswith("1.jsonl")
    write_jsonl(tmp_path / "3.jsonl", [30])  # arrives later; sorts after the position
    write_jsonl(tmp_path / "0a.jsonl", [-1])  # sorts before: treated as done
    assert records(read_all(config, mid, batch_size=3)) == [13, 14, 20, 21, 22, 23, 24, 30]


def test_bad_lines_become_failures_with_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"a": 1}\n\n{"a": \n{"a": 3}\n[1,\n')
    batches = read_all(FileSourceConfig(path=str(p)), batch_size=10)
    assert records(batches) == [{"a": 1}, {"a": 3}]
    failures = [f for b in batches for f in (b.failures or [])]
    assert [(f.where, f.record) for f in failures] == [
        (f"{p}:3", b'{"a": '),
        (f"{p}:5", b"[1,"),
    ]
    assert all(f.error.startswith("invalid JSON") for f in failures)


def test_csv_rows_with_wrong_field_count_fail_with_line(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n3\n4,5,6\n7,8\n")
    batches = read_all(FileSourceConfig(path=str(p)), batch_size=10)
    assert records(batches) == [{"a": "1", "b": "2"}, {"a": "7", "b": "8"}]
    failures = [(f.where, f.error) for b in batches for f in (b.failures or [])]
    assert failures == [
        (f"{p}:3", "expected 2 fields, got 1"),
        (f"{p}:4", "expected 2 fields, got 3"),
    ]


def test_csv_with_given_columns_and_delimiter(tmp_path: Path) -> None:
    p = tmp_path / "x.tsv"
    p.write_text("1\tx\n2\ty\n")
    cfg = FileSourceConfig(path=str(p), csv_columns=["id", "v"], csv_delimiter="\t")
    assert records(read_all(cfg)) == [{"id": "1", "v": "x"}, {"id": "2", "v": "y"}]


def test_text_with_invalid_encoding_fails_per_line(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_bytes(b"ok\n\xff\xfe bad\nfine\n")
    batches = read_all(FileSourceConfig(path=str(p)), batch_size=10)
    assert records(batches) == ["ok", "fine"]
    assert [f.where for b in batches for f in (b.failures or [])] == [f"{p}:2"]


def test_missing_path_fails_at_open_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(FatalConnectorError, match="path '.*nothing-here.jsonl' does not exist"):
        read_all(FileSourceConfig(path=str(tmp_path / "nothing-here.jsonl")))
    with pytest.raises(FatalConnectorError, match="no files match"):
        read_all(FileSourceConfig(path=str(tmp_path / "*.csv")))


def test_corrupt_gzip_fails_with_the_path(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:-30])
    with pytest.raises(FatalConnectorError, match=r"reading '.*x\.jsonl\.gz' failed"):
        read_all(FileSourceConfig(path=str(p)))


def test_progress_reaches_total(files: dict[str, Path]) -> None:
    async def go() -> tuple[int, int | None]:
        src = FileSource(FileSourceConfig(path=str(files["jsonl"].parent)))
        await src.open(RuntimeContext(job_name="t", execution_id="e", component="c"), None)
        async for _ in src.read():
            pass
        p = src.progress()
        assert p is not None
        return p.done, p.total

    done, total = asyncio.run(go())
    assert total == sum(f.stat().st_size for f in files.values())
    assert done == total
