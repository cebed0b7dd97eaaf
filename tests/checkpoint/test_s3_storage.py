"""Checkpoints on S3: an S3-compatible server on loopback (moto's S3 server in its own
process, started by the test command; PIPELINE_TEST_S3_ENDPOINT), reached through s3fs
with ``PIPELINE_CHECKPOINT_URL=s3://bucket/prefix`` exactly as a user configures it.

The keyed LMDB job of the crash tests is SIGKILLed again and again and resumed: its
incremental checkpoints (deltas composed on restore) live only in the bucket, and its
output equals an uninterrupted run's.
"""

from __future__ import annotations

import os
import random
import sqlite3
import uuid
from pathlib import Path

import pytest

from pipeline_core.testing.crash import attempt_recorded, kill_and_resume
from tests.checkpoint.test_crash_recovery import (
    INCREMENTAL_RECORDS,
    checkpoints_begun,
    make_incremental_job,
    output,
    pending_checkpoints,
    start,
)
from tests.conftest import BIN

ENDPOINT = os.environ.get("PIPELINE_TEST_S3_ENDPOINT", "")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], object, str]:
    """(the environment a job needs, the s3fs file system, a fresh bucket's name)."""
    assert ENDPOINT, (
        "PIPELINE_TEST_S3_ENDPOINT is not set: run the tests with `make test` "
        "(scripts/test-services.sh starts moto's S3 server)"
    )
    import s3fs

    env = {
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    fs = s3fs.S3FileSystem(endpoint_url=ENDPOINT, key="testing", secret="testing")
    bucket = f"chk-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    return {**env, "PIPELINE_CHECKPOINT_URL": f"s3://{bucket}/checkpoints"}, fs, bucket


def test_sigkill_and_resume_with_checkpoints_on_s3(
    tmp_path: Path, s3: tuple[dict[str, str], object, str]
) -> None:
    env, fs, bucket = s3
    reference_dir, crash_dir = tmp_path / "reference", tmp_path / "crashy"
    make_incremental_job(reference_dir, rate=1_000_000)
    make_incremental_job(crash_dir, rate=2_500)
    ref = start(reference_dir)
    assert ref.wait(timeout=120) == 0, ref.stderr.read() if ref.stderr else ""
    expected = output(reference_dir)
    assert len(expected) == INCREMENTAL_RECORDS

    seed = random.randrange(1 << 30)
    print(f"kill seed: {seed}")
    report = kill_and_resume(
        [str(BIN / "pipeline-run"), "run", "--resume", "--no-progress", "--quiet", "job.yaml"],
        cwd=crash_dir,
        kills=6,
        during_checkpoint=2,
        pending_checkpoints=lambda: checkpoints_begun(crash_dir),
        seed=seed,
        env={**env, "PIPELINE_DATABASE_URL": ""},
        started=attempt_recorded(crash_dir),
    )
    assert report.kills >= 6, report
    assert pending_checkpoints(crash_dir) == 0

    got = output(crash_dir)
    assert len(got) == len({r["i"] for r in got}), f"seed {seed}: duplicated records"
    assert sorted(got, key=lambda r: r["i"]) == sorted(expected, key=lambda r: r["i"]), (
        f"seed {seed}"
    )
    # the checkpoints are in the bucket, none on local disk, and every completed one the
    # metadata keeps is there to restore
    assert not (crash_dir / ".pipeline" / "checkpoints").exists()
    with sqlite3.connect(crash_dir / ".pipeline" / "pipeline.db") as conn:
        kept = [
            p
            for (p,) in conn.execute(
                "SELECT storage_path FROM pipeline_checkpoint WHERE status = 'COMPLETED'"
            )
        ]
    assert kept and all(p.startswith(f"{bucket}/checkpoints/") for p in kept), kept
    assert all(fs.find(p) for p in kept), f"seed {seed}: a kept checkpoint is not in S3"  # type: ignore[attr-defined]
