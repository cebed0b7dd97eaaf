"""A metadata database URL whose driver is not installed: one line saying what to install.

psycopg *is* installed here, so the test blocks its import in the child process
(``sys.modules["psycopg"] = None``) — the only way to see a missing driver on this machine."""

from __future__ import annotations

import subprocess

from tests.conftest import BIN

BLOCKED = (
    "import sys; sys.modules['psycopg'] = None; "
    "from pipeline_core.cli.main import main; sys.exit(main())"
)


def test_a_missing_postgres_driver_names_the_extra_not_a_traceback() -> None:
    proc = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            BLOCKED,
            "--database",
            "postgresql+psycopg://app:s3cretpw@127.0.0.1:5432/x",
            "jobs",
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "pip install 'pipeline-core[postgres]'" in proc.stderr, proc.stderr
    assert "s3cretpw" not in proc.stderr
