"""``pipeline-run`` end to end: quickstart, errors, connectors, Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from pipeline_core import load_plugins
from tests.conftest import BIN, REPO, pipeline_run


def test_quickstart_job_runs_end_to_end(tmp_path: Path) -> None:
    # Run the shipped example from a copy of the repo layout, as a new user would.
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    proc = pipeline_run("run", "examples/quickstart.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "COMPLETED" in proc.stdout
    out = sorted((tmp_path / "examples/output/orders").iterdir())
    rows = [orjson.loads(line) for p in out for line in p.read_bytes().splitlines()]
    assert len(out) == 4 and all(not p.name.startswith(".") for p in out)
    assert len(rows) == 3383
    assert all(r["total"] == round(r["amount"] + r["vat"], 2) and r["amount"] >= 20 for r in rows)
    dead = [
        orjson.loads(line)
        for p in (tmp_path / "examples/output/dead-letter").iterdir()
        for line in p.read_bytes().splitlines()
    ]
    assert [d["where"].rsplit(":", 1)[1] for d in dead] == ["1234", "4000"]
    assert "records read" in proc.stdout and "4,998" in proc.stdout
    assert "failed" in proc.stdout
    assert "output: sink (file): 4 files in examples/output/orders/" in proc.stdout
    assert "output: dead_letter sink: 1 file in examples/output/dead-letter/" in proc.stdout


def test_relative_paths_resolve_from_the_job_file_wherever_it_runs(tmp_path: Path) -> None:
    """docs/cli.md, "Relative paths": data and functions alike, from the job's folder."""
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    inside = pipeline_run("run", "--no-progress", "quickstart.yaml", cwd=tmp_path / "examples")
    assert inside.returncode == 0, inside.stderr
    assert "output: sink (file): 4 files in output/orders/" in inside.stdout
    assert not (tmp_path / "examples/examples").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    job = str(tmp_path / "examples/quickstart.yaml")
    proc = pipeline_run("run", "--no-progress", "--json", job, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["records_read"] == 4998
    assert [p.name for p in elsewhere.iterdir()] == [".pipeline"]  # only the metadata
    # both runs wrote next to the job file; the second replaced the first's (overwrite)
    parts = [p.name for p in (tmp_path / "examples/output/orders").iterdir()]
    assert len(parts) == 4 and all(p.startswith("part-") for p in parts), parts


def test_bad_job_prints_one_line_per_problem_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "name: broken\n"
        "source: {type: file, config: {path: in.jsonl, batch_size: abc}}\n"
        "transform: [{type: map, function: 'nowhere:fn'}]\n"
        "sink: {type: nosuch}\n"
    )
    proc = pipeline_run("run", "job.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    installed = ", ".join(load_plugins().sinks.names())
    assert "file" in installed
    assert lines == [
        "error: job 'broken', source (file): field 'batch_size': expected int, got 'abc'",
        "error: job 'broken', sink: field 'type': unknown sink type 'nosuch' (installed sink "
        f"types: {installed}; is its connector installed? see `pipeline-run connectors`)",
        "error: job 'broken', transform step 1 (map): field 'function': cannot import "
        "'nowhere:fn': no module 'nowhere' in the job's folder or "
        f"PIPELINE_FUNCTION_PATH ({tmp_path.resolve()}); an installed package needs "
        "PIPELINE_FUNCTION_PACKAGES=nowhere",
    ]


def test_messages_print_verbatim_not_as_markup(tmp_path: Path) -> None:
    """Brackets in a message ("pip install 'pipeline-connector-jdbc[postgres]'", a
    value) are text: rich markup would swallow them."""
    (tmp_path / "job.yaml").write_text(
        "name: brackets\n"
        "source: {type: file, config: {path: in.jsonl, batch_size: '[postgres]'}}\n"
        "sink: {type: file, config: {path: out}}\n"
    )
    proc = pipeline_run("run", "job.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: job 'brackets', source (file): field 'batch_size': expected int, got '[postgres]'"
    ]


def test_validate_checks_without_running(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    proc = pipeline_run("validate", "examples/quickstart.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok: job 'quickstart-orders': source (file) → 3 steps → sink (file)" in proc.stdout
    assert not (tmp_path / "examples/output").exists()


def test_an_unknown_dependency_gets_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("")
    for name, extra in (
        ("orders-10", ""),
        ("orders-05", ""),
        ("report", "schedule: {type: DEPENDENCY, dependencies: [orders-1O]}\n"),
    ):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nsource: {{type: file, config: {{path: in.jsonl}}}}\n"
            f"sink: {{type: file, config: {{path: out}}}}\n{extra}"
        )
    proc = pipeline_run("validate", "orders-10.yaml", "report.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "not registered: orders-1O (did you mean 'orders-10'?)" in proc.stderr, proc.stderr
    # and when setting a schedule
    for name in ("orders-10", "orders-05"):
        assert pipeline_run("jobs", "import", f"{name}.yaml", cwd=tmp_path).returncode == 0
    proc = pipeline_run("jobs", "schedule", "orders-05", "--after", "ordrs-10,x", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "not registered: ordrs-10 (did you mean 'orders-10'?), x" in proc.stderr, proc.stderr
    # what `jobs schedule` prints reads as text, not Python values; times say their zone
    proc = pipeline_run("jobs", "schedule", "orders-05", "--after", "orders-10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "dependencies: orders-10" in lines and "enabled: yes" in lines, lines
    assert not re.search(r"[()\[\]']|True|False", proc.stdout), proc.stdout
    proc = pipeline_run("jobs", "schedule", "orders-05", "--cron", "0 3 * * *", cwd=tmp_path)
    assert re.search(r"^next_trigger_time: \d{4}-\d\d-\d\d 03:00:00 UTC$", proc.stdout, re.M), (
        proc.stdout
    )


def test_validate_reports_an_input_path_that_does_not_exist(tmp_path: Path) -> None:
    """README: every mistake is reported before anything runs — a missing input too."""
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs/job.yaml").write_text(
        "name: missing-input\n"
        "source: {type: file, config: {path: data/in.jsonl}}\n"
        "sink: {type: file, config: {path: out}}\n"
    )
    proc = pipeline_run("validate", "jobs/job.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    missing = tmp_path.resolve() / "jobs/data/in.jsonl"  # relative to the job file
    assert proc.stderr.splitlines() == [
        f"error: job 'missing-input', source (file): path '{missing}' does not exist"
    ]
    (tmp_path / "jobs/data").mkdir()
    (tmp_path / "jobs/data/in.jsonl").write_text('{"a": 1}\n')
    assert pipeline_run("validate", "jobs/job.yaml", cwd=tmp_path).returncode == 0
    assert not (tmp_path / "jobs/out").exists() and not (tmp_path / ".pipeline").exists()


def test_progress_bar_when_attached_to_a_terminal(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    proc = pipeline_run("run", "examples/quickstart.yaml", cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "100.0%" in proc.stderr
    assert "4,998 records" in proc.stderr and "rec/s" in proc.stderr


def test_progress_bar_at_80_columns_cuts_nothing(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    proc = pipeline_run(
        "run", "examples/quickstart.yaml", cwd=tmp_path, env={"FORCE_COLOR": "1", "COLUMNS": "80"}
    )
    assert proc.returncode == 0, proc.stderr
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", proc.stderr).replace("\r", "\n")
    last = [line for line in plain.splitlines() if "100.0%" in line][-1]
    assert len(last) <= 80 and "…" not in last
    assert re.search(r"4,998 records [\d,]+ rec/s 2 failed \d+:\d\d:\d\d$", last.rstrip()), last


def test_connectors_lists_the_file_connector() -> None:
    proc = pipeline_run("connectors")
    assert proc.returncode == 0, proc.stderr
    file_row = next(line for line in proc.stdout.splitlines() if "pipeline-connector-file" in line)
    assert "file" in file_row and "0.1.0" in file_row
    core_row = next(line for line in proc.stdout.splitlines() if "pipeline-core" in line)
    assert "memory" in core_row


def _slow_job(tmp_path: Path, records: int = 20_000) -> None:
    with open(tmp_path / "in.jsonl", "wb") as f:
        for i in range(records):
            f.write(orjson.dumps({"i": i}) + b"\n")
    (tmp_path / "job.yaml").write_text(
        "name: slow\n"
        "source: {type: file, config: {path: in.jsonl}}\n"
        "transform: [{type: rate_limit, per_second: 5000}]\n"
        "sink: {type: file, config: {path: out, max_records_per_file: 1000}}\n"
    )


def _start_slow(tmp_path: Path, *extra: str, ignore_sigint: bool = False) -> subprocess.Popen[str]:
    def ignore() -> None:  # what a shell does to a job started in the background
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        [str(BIN / "pipeline-run"), "run", "--no-progress", *extra, "job.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=ignore if ignore_sigint else None,
    )
    out = tmp_path / "out"
    deadline = time.monotonic() + 30
    # Wait until parts were rolled and one is being written: the interesting moment.
    while time.monotonic() < deadline:
        if out.exists() and len(list(out.iterdir())) >= 3:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("the job never started writing")
    assert proc.poll() is None, "the job finished before it could be interrupted"
    return proc


def _published(out: Path) -> list[int]:
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "unfinished parts"
    return sorted(
        orjson.loads(line)["i"] for f in out.glob("*.jsonl") for line in f.read_bytes().splitlines()
    )


@pytest.mark.parametrize(
    ("sig", "ignore_sigint"),
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["SIGINT", "SIGINT-ignored-by-parent", "SIGTERM"],
)
def test_a_signal_checkpoints_stops_and_resume_finishes_exactly_once(
    tmp_path: Path, sig: signal.Signals, ignore_sigint: bool
) -> None:
    """docs/cli.md: the first SIGINT or SIGTERM takes a checkpoint and stops — CANCELLED,
    output up to the checkpoint committed — whatever signals the parent ignored."""
    _slow_job(tmp_path)
    proc = _start_slow(tmp_path, ignore_sigint=ignore_sigint)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, stderr
    assert "CANCELLED" in stdout and "Traceback" not in stderr
    assert "--resume" in stderr  # it says how to continue
    out = tmp_path / "out"
    first = _published(out)
    assert first == list(range(len(first))) and 0 < len(first) < 20_000
    listed = pipeline_run("executions", "--json", cwd=tmp_path)
    (execution,) = orjson.loads(listed.stdout)
    assert execution["status"] == "CANCELLED" and execution["end_time"] is not None
    resumed = pipeline_run("run", "--no-progress", "--resume", "job.yaml", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _published(out) == list(range(20_000))
    # the summary counts what the resumed run read: everything after the checkpoint
    read = re.search(r"records read\s+([\d,]+)", resumed.stdout)
    assert read is not None and int(read.group(1).replace(",", "")) == 20_000 - len(first)


@pytest.mark.parametrize("signals", [1, 2], ids=["checkpoint-and-stop", "stop-at-once"])
def test_a_stopped_runs_summary_matches_its_record_and_its_output(
    tmp_path: Path, signals: int
) -> None:
    """docs/cli.md: a stopped run's summary says what the execution record and the
    committed files say — not what the sink wrote and then discarded."""
    _slow_job(tmp_path)
    proc = _start_slow(tmp_path, "--json")
    for _ in range(signals):
        proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), stderr
    summary = orjson.loads(stdout)
    assert summary["status"] == "CANCELLED"
    (record,) = orjson.loads(pipeline_run("executions", "--json", cwd=tmp_path).stdout)
    assert record["execution_id"] == summary["execution_id"]
    assert summary["records_read"] == record["processed_records"]
    assert summary["failed_records"] == record["failed_records"] == 0
    assert summary["records_written"] == len(_published(tmp_path / "out"))
    assert summary["duration_s"] == record["duration_ms"] / 1000  # one duration


def test_a_second_signal_stops_at_once_without_partial_output(tmp_path: Path) -> None:
    _slow_job(tmp_path)
    proc = _start_slow(tmp_path)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    # 130 as a shell sees it: a second signal that lands while the process is already
    # past its event loop ends it by SIGINT itself (-2 here), after the summary
    assert proc.returncode in (130, -signal.SIGINT), stderr
    assert "CANCELLED" in stdout and "Traceback" not in stderr
    out = tmp_path / "out"
    first = _published(out)  # only whole, committed parts; a prefix of the input
    assert first == list(range(len(first)))
    resumed = pipeline_run("run", "--no-progress", "--resume", "job.yaml", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _published(out) == list(range(20_000))


def test_a_second_signal_stops_a_run_whose_step_blocks(tmp_path: Path) -> None:
    """A synchronous step that sleeps cannot see a cancellation; the second signal still
    ends the process promptly (within seconds, not after the remaining batches)."""
    with open(tmp_path / "in.jsonl", "wb") as f:
        for i in range(200):
            f.write(orjson.dumps({"i": i}) + b"\n")
    (tmp_path / "fns.py").write_text(
        "import time\n\ndef nap(r):\n    time.sleep(0.2)\n    return r\n"
    )
    (tmp_path / "job.yaml").write_text(
        "name: napper\n"
        "source: {type: file, config: {path: in.jsonl}}\n"
        'transform: [{type: map, function: "fns:nap"}]\n'
        "sink: {type: file, config: {path: out}}\n"
        "config: {source_batch_size: 10, checkpoint_interval: 100ms}\n"
    )
    proc = subprocess.Popen(
        [str(BIN / "pipeline-run"), "run", "--no-progress", "job.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = tmp_path / "out"
    deadline = time.monotonic() + 30
    while not (out.exists() and list(out.glob("*.jsonl"))):  # a checkpoint published
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=20)  # 200 records left would take ~30 s
    # 130 as a shell sees it: a second signal that lands while the process is already
    # past its event loop ends it by SIGINT itself (-2 here), after the summary
    assert proc.returncode in (130, -signal.SIGINT), stderr
    got = _published(out)
    assert got == list(range(len(got))) and len(got) < 200
    resumed = pipeline_run("run", "--no-progress", "--resume", "job.yaml", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _published(out) == list(range(200))


def test_python_example_runs(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    proc = subprocess.run(
        [str(BIN / "python"), "examples/python_job.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("COMPLETED: read 4998, wrote 3383, failed 2")
