"""``pipeline-run validate --connect`` (docs/cli.md, "validate"): the jdbc source and sink
connect to their database and disconnect; an unreachable one is one error line, the
password never shown. Plain ``validate`` connects to nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PIPELINE_RUN = str(Path(sys.executable).parent / "pipeline-run")
POSTGRES = os.environ.get(
    "PIPELINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: nothing listens on port 1
UNREACHABLE = "postgresql+psycopg://someone:s3cr3t-pw@127.0.0.1:1/nowhere"

JOB = """\
name: connect
source: {{type: jdbc, config: {{url: "{source}", query: "select 1 as one"}}}}
sink: {{type: jdbc, config: {{url: "{sink}", table: t}}}}
"""


def validate(
    tmp_path: Path, *args: str, source: str, sink: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "job.yaml").write_text(JOB.format(source=source, sink=sink))
    return subprocess.run(
        [PIPELINE_RUN, "validate", *args, "job.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_reachable_databases_pass(tmp_path: Path) -> None:
    proc = validate(tmp_path, "--connect", source=POSTGRES, sink=POSTGRES)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: job 'connect'")


def test_an_unreachable_database_is_one_error_line(tmp_path: Path) -> None:
    offline = validate(tmp_path, source=POSTGRES, sink=UNREACHABLE)
    assert offline.returncode == 0, offline.stderr  # without --connect: not asked
    proc = validate(tmp_path, "--connect", source=POSTGRES, sink=UNREACHABLE)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: job 'connect', sink (jdbc): "), lines
    assert "127.0.0.1:1" in lines[0] and "s3cr3t-pw" not in proc.stderr
