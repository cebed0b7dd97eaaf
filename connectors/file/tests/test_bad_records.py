"""Bad input in the file source costs only the records it concerns.

A CSV row with an unclosed quote, a row of the wrong width, bytes that do not decode, a
JSON line that does not parse: each is one failed record carrying its ``path:line``;
every other row of the file is read; checkpoint positions stay exact around them. The
first tests run real jobs the way users do (``pipeline-run run`` on files in a
directory); the others read through the source itself to pin positions and line numbers.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline_connector_file import FileSource, FileSourceConfig
from pipeline_core import Batch, FatalConnectorError, RuntimeContext
from pipeline_core.testing.crash import attempt_recorded, kill_and_resume

PIPELINE_RUN = str(Path(sys.executable).parent / "pipeline-run")
ENV = {**os.environ, "PIPELINE_DATABASE_URL": "", "COLUMNS": "200"}

JOB = """\
name: bad-input
source: {{type: file, config: {{path: {path}}}}}
sink: {{type: file, config: {{path: out}}}}
config:
  on_error: {on_error}
  dead_letter: {{type: file, config: {{path: dlq}}}}
"""


def run_cli(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPELINE_RUN, "run", "--no-progress", *args, "job.yaml"],
        cwd=directory,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_job(directory: Path, path: str, on_error: str = "dead_letter", extra: str = "") -> None:
    (directory / "job.yaml").write_text(JOB.format(path=path, on_error=on_error) + extra)


def jsonl_dir(directory: Path) -> list[Any]:
    if not directory.exists():
        return []
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")], "unfinished"
    return [
        orjson.loads(line)
        for p in sorted(directory.iterdir())
        for line in p.read_bytes().splitlines()
    ]


def execution_row(directory: Path) -> tuple[Any, ...]:
    with sqlite3.connect(directory / ".pipeline" / "pipeline.db") as conn:
        rows = conn.execute(
            "SELECT status, processed_records, failed_records, error_message"
            " FROM pipeline_job_execution"
        ).fetchall()
    assert len(rows) == 1
    return tuple(rows[0])


def csv_with_unclosed_quote(path: Path, rows: int = 1000, broken: int = 300) -> None:
    """``id,name,note`` and ``rows`` rows; row ``broken`` (file line broken + 1) opens a
    quote it never closes."""
    lines = ["id,name,note"]
    for i in range(1, rows + 1):
        note = '"never closed' if i == broken else f"note {i}"
        lines.append(f"{i},name{i},{note}")
    path.write_text("\n".join(lines) + "\n")


# --- real jobs ---------------------------------------------------------------------------


def test_csv_unclosed_quote_costs_only_its_row(tmp_path: Path) -> None:
    csv_with_unclosed_quote(tmp_path / "in.csv")
    write_job(tmp_path, "in.csv")

    done = run_cli(tmp_path)

    assert done.returncode == 0, done.stderr
    out = jsonl_dir(tmp_path / "out")
    assert len(out) == 999
    assert [int(r["id"]) for r in out] == [i for i in range(1, 1001) if i != 300]
    assert out[299] == {"id": "301", "name": "name301", "note": "note 301"}
    dead = jsonl_dir(tmp_path / "dlq")
    assert len(dead) == 1
    assert dead[0]["where"] == f"{tmp_path / 'in.csv'}:301"
    assert dead[0]["record"] == '300,name300,"never closed'
    assert "unclosed quote" in dead[0]["error"]
    assert execution_row(tmp_path)[:3] == ("COMPLETED", 999, 1)


def test_csv_unclosed_quote_under_fail_names_file_and_line(tmp_path: Path) -> None:
    csv_with_unclosed_quote(tmp_path / "in.csv")
    write_job(tmp_path, "in.csv", on_error="fail")

    done = run_cli(tmp_path)

    assert done.returncode != 0
    where = f"{tmp_path / 'in.csv'}:301"
    assert where in done.stderr
    status, _processed, failed, message = execution_row(tmp_path)
    assert (status, failed) == ("FAILED", 1)
    assert message.startswith(f"{where}: record ")
    assert "unclosed quote" in message
    assert jsonl_dir(tmp_path / "out") == []  # a failed run commits nothing


def test_jsonl_bad_lines_cost_one_record_each(tmp_path: Path) -> None:
    lines = [orjson.dumps({"n": i}) for i in range(1, 501)]
    lines[99] = b'{"n": 100, '  # truncated
    lines[249] = b"not json at all"
    lines[499] = b'{"n": "\xff"}'  # not UTF-8
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    write_job(tmp_path, "in.jsonl")

    done = run_cli(tmp_path)

    assert done.returncode == 0, done.stderr
    out = jsonl_dir(tmp_path / "out")
    assert [r["n"] for r in out] == [i for i in range(1, 501) if i not in (100, 250, 500)]
    dead = jsonl_dir(tmp_path / "dlq")
    path = tmp_path / "in.jsonl"
    assert [d["where"] for d in dead] == [f"{path}:100", f"{path}:250", f"{path}:500"]
    assert dead[1]["record"] == "not json at all"
    assert all(d["error"].startswith("invalid JSON") for d in dead)
    assert execution_row(tmp_path)[:3] == ("COMPLETED", 497, 3)


def test_jsonl_bad_line_under_fail_names_file_and_line(tmp_path: Path) -> None:
    lines = [orjson.dumps({"n": i}).decode() for i in range(1, 101)]
    lines[41] = "{oops"
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    write_job(tmp_path, "in.jsonl", on_error="fail")

    done = run_cli(tmp_path)

    assert done.returncode != 0
    assert f"{tmp_path / 'in.jsonl'}:42" in done.stderr
    status, _processed, failed, message = execution_row(tmp_path)
    assert (status, failed) == ("FAILED", 1)
    assert message.startswith(f"{tmp_path / 'in.jsonl'}:42: record ")


# --- the CSV reader, line by line ----------------------------------------------------------


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


def failures(batches: list[Batch]) -> list[tuple[int, Any, str]]:
    """(line, raw record, error) of each failure."""
    return [
        (int(f.where.rsplit(":", 1)[1]), f.record, f.error)
        for b in batches
        for f in b.failures or ()
    ]


def ids(batches: list[Batch]) -> list[int]:
    return [int(r["id"]) for r in records(batches)]


def rows_file(path: Path, rows: dict[int, str], n: int = 20) -> None:
    """A CSV ``id,v`` with rows 1..n; ``rows`` replaces the lines of some ids."""
    lines = ["id,v"] + [rows.get(i, f"{i},v{i}") for i in range(1, n + 1)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_unclosed_quote_running_to_the_end_of_the_file(tmp_path: Path, batch_size: int) -> None:
    p = tmp_path / "x.csv"
    rows_file(p, {5: '5,"open'})
    batches = read_all(FileSourceConfig(path=str(p)), batch_size=batch_size)
    assert ids(batches) == [i for i in range(1, 21) if i != 5]
    [(line, raw, error)] = failures(batches)
    assert (line, raw) == (6, '5,"open')
    assert error.startswith("invalid CSV: unclosed quote")


def test_unclosed_quote_on_the_last_line(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b'id,v\n1,a\n2,"b')  # no line end either
    batches = read_all(FileSourceConfig(path=str(p)))
    assert ids(batches) == [1]
    assert [(line, raw) for line, raw, _ in failures(batches)] == [(3, '2,"b')]


def test_unclosed_quote_ending_at_a_later_quoted_field(tmp_path: Path) -> None:
    # the runaway field meets row 9's quotes: strict parsing fails there, and everything
    # after row 4 is read again as rows
    p = tmp_path / "x.csv"
    rows_file(p, {4: '4,"open', 9: '9,"quoted, fine"'})
    batches = read_all(FileSourceConfig(path=str(p)))
    assert ids(batches) == [i for i in range(1, 21) if i != 4]
    assert [line for line, _, _ in failures(batches)] == [5]
    assert records(batches)[7] == {"id": "9", "v": "quoted, fine"}


def test_unclosed_quote_that_closes_by_accident_with_the_wrong_width(tmp_path: Path) -> None:
    # row 4's quote is closed by the lone quote ending row 7: one record of 4 lines and
    # 3 fields, not the 2 of the header
    p = tmp_path / "x.csv"
    rows_file(p, {4: '4,"open', 7: '7,x",y'})
    batches = read_all(FileSourceConfig(path=str(p)))
    assert ids(batches) == [i for i in range(1, 21) if i not in (4, 7)]
    got = failures(batches)
    assert [line for line, _, _ in got] == [5, 8]
    assert "unclosed quote" in got[0][2]
    assert got[1][2] == "expected 2 fields, got 3"


def test_a_record_spanning_too_many_lines_is_an_unclosed_quote(tmp_path: Path) -> None:
    # closed by accident with the right width, but over csv_max_record_lines lines
    p = tmp_path / "x.csv"
    rows_file(p, {4: '4,"open', 9: 'end"'})
    cfg = FileSourceConfig(path=str(p), csv_max_record_lines=5)
    batches = read_all(cfg)
    assert ids(batches) == [i for i in range(1, 21) if i not in (4, 9)]
    got = failures(batches)
    assert [line for line, _, _ in got] == [5, 10]
    assert got[0][2].endswith("spans 6 lines, more than csv_max_record_lines (5)")
    # within the limit the same record is one (odd) record: the limit is the judge
    lenient = read_all(FileSourceConfig(path=str(p), csv_max_record_lines=6))
    assert failures(lenient) == []
    assert records(lenient)[3] == {"id": "4", "v": "open\n5,v5\n6,v6\n7,v7\n8,v8\nend"}


def test_quoted_fields_over_several_lines_are_still_one_record(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text('id,v\n1,"a\nb\nc"\n2,"x, ""y"""\n3,"\n"\n')
    batches = read_all(FileSourceConfig(path=str(p)))
    assert records(batches) == [
        {"id": "1", "v": "a\nb\nc"},
        {"id": "2", "v": 'x, "y"'},
        {"id": "3", "v": "\n"},
    ]
    assert failures(batches) == []
    assert batches[-1].position is not None and batches[-1].position["line"] == 7


def test_malformed_rows_and_bad_bytes_fail_alone(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b'id,v\n1,a\n2,"b"c\n3,\xff\xfe\n4,d\n5,"e\nf"\n6,g\n')
    batches = read_all(FileSourceConfig(path=str(p)), batch_size=2)
    assert records(batches) == [
        {"id": "1", "v": "a"},
        {"id": "4", "v": "d"},
        {"id": "5", "v": "e\nf"},
        {"id": "6", "v": "g"},
    ]
    got = failures(batches)
    # (raw bytes only where they do not decode)
    assert [(line, raw) for line, raw, _ in got] == [(3, '2,"b"c'), (4, b"3,\xff\xfe")]
    assert got[0][2].startswith("invalid CSV: ")
    assert got[1][2].startswith("not utf-8: ")


def test_bad_bytes_inside_a_quoted_field_spanning_lines(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b'id,v\n1,"a\n\xff\nb"\n2,c\n')
    batches = read_all(FileSourceConfig(path=str(p)))
    assert ids(batches) == [2]
    # the record cannot be trusted to span lines: its lines fail one by one (line 4,
    # 'b"', is one field where two are expected)
    assert [line for line, _, _ in failures(batches)] == [2, 3, 4]


def test_a_broken_header_fails_the_job_naming_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b'id,"v\n1,a\n2,b\n')
    with pytest.raises(FatalConnectorError, match=r"x\.csv:1: invalid CSV header: unclosed quote"):
        read_all(FileSourceConfig(path=str(p)))


MESSY = (
    'id,v\n1,a\n2,"multi\nline"\n3,"open\n4,d\n\n5,e,extra\n6,"q ""x"""\n'
    '7,\xff\n8,"also open\n9,"a", b\n10,j\n11,"k\nl\nm"\n12,"never\n13,n\n14,o\n'
).encode("latin-1")


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5])
@pytest.mark.parametrize("header", [True, False])
def test_resume_from_every_position_around_bad_rows_is_exact(
    tmp_path: Path, batch_size: int, header: bool
) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(MESSY if header else MESSY.split(b"\n", 1)[1])
    cfg = FileSourceConfig(path=str(p), csv_columns=None if header else ["id", "v"])
    batches = read_all(cfg, batch_size=batch_size)
    assert ids(batches) == [1, 2, 4, 6, 10, 11, 13, 14]
    # (file lines of the version with a header)
    assert [line + (0 if header else 1) for line, _, _ in failures(batches)] == [
        5,  # 3,"open: the runaway field meets row 6's quotes, malformed there
        8,  # 5,e,extra
        10,  # 7,\xff
        11,  # 8,"also open: meets row 9's quote
        12,  # 9,"a", b: the space after the closing quote
        17,  # 12,"never: runs to the end of the file
    ]
    seen_records = seen_failures = 0
    all_failures = failures(batches)
    for batch in batches:
        seen_records += len(batch.records)
        seen_failures += len(batch.failures or ())
        assert batch.position is not None
        rest = read_all(cfg, batch.position, batch_size=batch_size)
        assert records(rest) == records(batches)[seen_records:], batch.position
        assert failures(rest) == all_failures[seen_failures:], batch.position


# --- kills --------------------------------------------------------------------------------

KILL_JOB = """\
name: bad-input-kills
source: {type: file, config: {path: in.csv, batch_size: 50}}
transform:
  - {type: rate_limit, per_second: 4000}
sink: {type: file, config: {path: out, max_records_per_file: 500}}
config:
  checkpoint_interval: 100ms
  on_error: dead_letter
  dead_letter: {type: file, config: {path: dlq}}
"""


def test_kill_and_resume_neither_loses_nor_duplicates_around_bad_rows(tmp_path: Path) -> None:
    n = 12_000
    broken = {i for i in range(1, n + 1) if i % 997 == 0}  # 12 unclosed quotes
    wide = {i for i in range(1, n + 1) if i % 1499 == 0}  # 8 rows of the wrong width
    lines, line_of = ["id,v"], {}
    for i in range(1, n + 1):
        line_of[i] = len(lines) + 1
        if i in broken:
            lines.append(f'{i},"open')
        elif i in wide:
            lines.append(f"{i},a,b")
        elif i % 10 == 0:
            lines.append(f'{i},"two')
            lines.append('lines"')
        else:
            lines.append(f"{i},v{i}")
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "job.yaml").write_text(KILL_JOB)

    # each kill lands in the work of a run that resumed (its attempt recorded), never in
    # a start-up: 3 s of work at 4,000 records/s, four runs cut after 0.2-0.6 s each
    report = kill_and_resume(
        [PIPELINE_RUN, "run", "--resume", "--no-progress", "--quiet", "job.yaml"],
        cwd=tmp_path,
        kills=4,
        delay=(0.2, 0.6),
        env={"PIPELINE_DATABASE_URL": ""},
        started=attempt_recorded(tmp_path),
    )

    assert report.kills >= 4
    out = jsonl_dir(tmp_path / "out")
    assert sorted(int(r["id"]) for r in out) == sorted(set(range(1, n + 1)) - broken - wide)
    assert len(out) == n - len(broken) - len(wide)
    dead = jsonl_dir(tmp_path / "dlq")
    bad = broken | wide
    assert len(dead) == len(bad), "dead letters lost or duplicated"
    assert sorted(int(d["record"].split(",")[0]) for d in dead) == sorted(bad)
    for d in dead:
        assert d["where"] == f"{tmp_path / 'in.csv'}:{line_of[int(d['record'].split(',')[0])]}"
    # one execution, resumed by every run: its counts span the attempts exactly
    status, processed, failed, _ = execution_row(tmp_path)
    assert (status, processed, failed) == ("COMPLETED", len(out), len(bad))
    assert attempt_recorded(tmp_path)(report.runs)  # every run recorded its attempt …
    assert not attempt_recorded(tmp_path)(report.runs + 1)  # … once
    assert report.runs == report.kills + 1
