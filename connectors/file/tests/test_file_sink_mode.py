"""The sink's ``mode`` (docs/connectors/file.md): ``append`` keeps the part files of
earlier runs, ``overwrite`` replaces them — once the new run committed a checkpoint, so
a run that fails before one leaves the earlier output as it was. With real
``pipeline-run`` processes and files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

PIPELINE_RUN = str(Path(sys.executable).parent / "pipeline-run")

JOB = """\
name: modes
source: {{type: file, config: {{path: in.jsonl}}}}
transform: [{{type: map, function: "fns:check"}}]
sink: {{type: file, config: {{path: out, max_records_per_file: 40, mode: {mode}}}}}
"""

FNS = """
def check(record):
    if record.get("bad"):
        raise ValueError("bad input")
    return record
"""


def run(tmp_path: Path, mode: str, records: list[dict[str, object]]) -> int:
    (tmp_path / "job.yaml").write_text(JOB.format(mode=mode))
    (tmp_path / "fns.py").write_text(FNS)
    (tmp_path / "in.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    proc = subprocess.run(
        [PIPELINE_RUN, "run", "--no-progress", "--no-record", "job.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    return proc.returncode


def output(tmp_path: Path) -> list[int]:
    files = sorted((tmp_path / "out").iterdir())
    assert not [f.name for f in files if f.name.startswith(".") and not f.name.endswith(".lock")]
    return sorted(
        orjson.loads(line)["i"]
        for f in files
        if not f.name.startswith(".")
        for line in f.read_bytes().splitlines()
    )


@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_a_second_run_appends_or_replaces(tmp_path: Path, mode: str) -> None:
    assert run(tmp_path, mode, [{"i": i} for i in range(100)]) == 0
    assert run(tmp_path, mode, [{"i": i} for i in range(100, 150)]) == 0
    expected = list(range(100, 150)) if mode == "overwrite" else list(range(150))
    assert output(tmp_path) == expected


def test_overwrite_keeps_the_earlier_output_when_the_run_fails_first(tmp_path: Path) -> None:
    assert run(tmp_path, "overwrite", [{"i": i} for i in range(100)]) == 0
    assert run(tmp_path, "overwrite", [{"bad": True}, {"i": 1000}]) == 1
    assert output(tmp_path) == list(range(100))


def test_overwrite_leaves_other_prefixes_and_files_alone(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/README.txt").write_text("not a part file")
    (tmp_path / "out/other-0a1b2c3d-00000.jsonl").write_text('{"i": -1}\n')
    assert run(tmp_path, "overwrite", [{"i": i} for i in range(10)]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert names[:2] == ["README.txt", "other-0a1b2c3d-00000.jsonl"] and len(names) == 3
