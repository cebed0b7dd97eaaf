"""Every listing at 80 columns and piped (docs/cli.md, "Listings and ``--json``"): no
word cut, no line too wide, and ``--json`` complete and parseable."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from rich.cells import cell_len

from tests.conftest import BIN, REPO, pipeline_run

DESCRIPTION = (
    "Paid orders with VAT, JSON Lines in, rolling JSON Lines out, deliberately described "
    "at some length"
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quickstart copy with a long description, run once, plus a job that failed."""
    d = tmp_path_factory.mktemp("listings")
    shutil.copytree(REPO / "examples", d / "examples", ignore=shutil.ignore_patterns("output"))
    job = d / "examples/quickstart.yaml"
    text = job.read_text()
    assert "\ndescription:" in text
    job.write_text(
        "\n".join(
            f"description: {DESCRIPTION!r}" if line.startswith("description:") else line
            for line in text.splitlines()
        )
    )
    assert pipeline_run("run", "examples/quickstart.yaml", cwd=d).returncode == 0
    (d / "fns.py").write_text(
        "def boom(r):\n    raise ValueError('this record cannot be enriched: no customer')\n"
    )
    (d / "in.jsonl").write_text('{"i": 1}\n')
    (d / "failing.yaml").write_text(
        "name: failing-enrichment\n"
        "source: {type: file, config: {path: in.jsonl}}\n"
        'transform: [{type: map, function: "fns:boom"}]\n'
        "sink: {type: file, config: {path: out}}\n"
    )
    assert pipeline_run("run", "failing.yaml", cwd=d).returncode == 1
    return d


def _piped(*args: str, cwd: Path, columns: str | None) -> str:
    """The command with its output into a pipe; ``columns`` None: no $COLUMNS at all."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run(
        [str(BIN / "pipeline-run"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _json(*args: str, cwd: Path) -> object:
    proc = pipeline_run(*args, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)


def _words(*values: object) -> set[str]:
    return {w.strip(",;:") for v in values for w in str(v).split()} - {""}


def _assert_whole(text: str, words: set[str], width: int) -> None:
    lines = text.splitlines()
    assert lines, "nothing printed"
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, too_wide
    printed = _words(text)
    cut = sorted(words - printed)
    assert not cut, f"not printed whole: {cut}\n{text}"


@functools.cache
def _expected(listing: str, cwd: Path) -> tuple[tuple[str, ...], set[str], set[str]]:
    """The command, the words that must be printed whole at any width, and those that
    must be printed whole where their column is shown (at 160 columns)."""
    if listing == "connectors":
        data = _json("connectors", cwd=cwd)
        assert isinstance(data, dict)
        plugins = data["plugins"]
        assert {"file", "kafka", "core"} <= {p["name"] for p in plugins}
        always = {p["distribution"] for p in plugins} | {
            name for p in plugins for k in ("sources", "sinks", "triggers") for name in p[k]
        }
        return ("connectors",), always, {p["version"] for p in plugins}
    if listing == "jobs":
        jobs = _json("jobs", "list", cwd=cwd)
        assert isinstance(jobs, list)
        assert {j["job_name"] for j in jobs} == {"quickstart-orders", "failing-enrichment"}
        assert DESCRIPTION in {j["description"] for j in jobs}
        always = {j["job_name"] for j in jobs} | _words(DESCRIPTION)
        return ("jobs", "list"), always, {j["job_type"] for j in jobs}
    if listing == "executions":
        rows = _json("executions", cwd=cwd)
        assert isinstance(rows, list)
        assert {r["status"] for r in rows} == {"COMPLETED", "FAILED"}
        failed = next(r for r in rows if r["status"] == "FAILED")
        assert "cannot be enriched" in failed["error_message"]
        always = {r["execution_id"][:12] for r in rows} | {r["job_name"] for r in rows}
        always |= {r["status"] for r in rows}
        return ("executions",), always, _words(failed["error_message"]) | {"MANUAL"}
    assert listing == "checkpoints"
    rows = _json("checkpoints", "list", "quickstart-orders", cwd=cwd)
    assert isinstance(rows, list) and rows
    position = rows[0]["state_data"]["source_state"]
    assert position["file"].endswith("examples/data/orders.jsonl")
    always = {r["status"] for r in rows} | {
        f"file={os.path.relpath(position['file'], cwd)}",
        f"line={position['line']}",
        f"offset={position['offset']}",
    }
    return ("checkpoints", "list", "quickstart-orders"), always, set()


LISTINGS = ["connectors", "jobs", "executions", "checkpoints"]


@pytest.mark.parametrize("listing", LISTINGS)
@pytest.mark.parametrize("columns", ["80", None, "60", "160"], ids=lambda c: f"COLUMNS={c}")
def test_a_listing_fits_without_cutting_a_word(
    workdir: Path, listing: str, columns: str | None
) -> None:
    args, always, wide = _expected(listing, workdir)
    text = _piped(*args, cwd=workdir, columns=columns)
    width = int(columns or 80)  # piped and no $COLUMNS: rich's 80
    _assert_whole(text, always | (wide if width >= 160 else set()), width)


def test_narrow_tables_leave_columns_out_rather_than_squeeze_them(workdir: Path) -> None:
    text = _piped("jobs", "list", cwd=workdir, columns="80")
    # the description keeps lines of several words, not one word per line
    desc_lines = [line for line in text.splitlines() if "orders" in line or "Lines" in line]
    assert any(len(_words(line) & _words(DESCRIPTION)) >= 4 for line in desc_lines), text
    caption = " ".join(text.splitlines()[-2:])
    assert "not shown at 80 columns: updated (UTC)" in caption and "--json" in caption


def test_a_narrow_table_keeps_the_columns_that_fit(workdir: Path) -> None:
    """Leaving out a wide column (the error) makes room for narrow ones (failed)."""
    text = _piped("executions", "--job", "failing-enrichment", cwd=workdir, columns="80")
    header = next(line for line in text.splitlines() if line.startswith("execution"))
    assert "failed" in header.split(), text
    assert "failed" not in text.split("not shown at 80 columns:")[-1], text


def test_validate_and_run_summaries_as_json(workdir: Path) -> None:
    ok = _json("validate", "examples/quickstart.yaml", cwd=workdir)
    assert ok == {
        "ok": True,
        "file": "examples/quickstart.yaml",
        "job": "quickstart-orders",
        "source": "source (file)",
        "steps": 3,
        "sink": "sink (file)",
        "errors": [],
    }
    (workdir / "bad.yaml").write_text(
        "name: bad\nsource: {type: fiel}\nsink: {type: file, config: {pth: out}}\n"
    )
    proc = pipeline_run("validate", "bad.yaml", "--json", cwd=workdir)
    assert proc.returncode == 2
    bad = orjson.loads(proc.stdout)
    assert bad["ok"] is False and len(bad["errors"]) == 3
    assert any("unknown source type 'fiel'" in e for e in bad["errors"])

    proc = pipeline_run("run", "--json", "examples/quickstart.yaml", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert summary["status"] == "COMPLETED" and summary["job"] == "quickstart-orders"
    assert (summary["records_read"], summary["records_written"]) == (4998, 3383)
    assert summary["failed_records"] == 2 and summary["error"] is None
    assert any(o.startswith("sink (file): ") for o in summary["outputs"])
    (record,) = [
        r
        for r in _json("executions", "--job", "quickstart-orders", cwd=workdir)  # type: ignore[union-attr]
        if r["execution_id"] == summary["execution_id"]
    ]
    assert record["processed_records"] == summary["records_read"]
    # one duration: the record's, start to end (docs/cli.md)
    assert summary["duration_s"] == record["duration_ms"] / 1000


@pytest.mark.parametrize(
    "args", [("executions", "logs"), ("executions",), ("jobs", "list", "--json"), ("connectors",)]
)
def test_a_closed_stdout_ends_the_command_quietly(workdir: Path, args: tuple[str, ...]) -> None:
    """``pipeline-run … | head -1``: the reader is gone before the command writes."""
    if args == ("executions", "logs"):
        rows = _json("executions", "--job", "quickstart-orders", cwd=workdir)
        assert isinstance(rows, list)
        args = (*args, rows[0]["execution_id"])
    read, write = os.pipe()
    os.close(read)  # every write now fails with EPIPE
    try:
        proc = subprocess.run(
            [str(BIN / "pipeline-run"), *args],
            cwd=workdir,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_an_empty_listing_says_none(tmp_path: Path) -> None:
    for args, line in ((("jobs", "list"), "Jobs: none"), (("executions",), "Executions: none")):
        assert _piped(*args, cwd=tmp_path, columns="80").splitlines() == [line]
        assert _json(*args, cwd=tmp_path) == []
