"""Alert rules checked by promtool, dashboard/alert metric names checked against what the
service exports, and the Pushgateway option of ``pipeline-run run``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline_core.api.metrics import PipelineMetrics
from tests.api.conftest import Live
from tests.conftest import REPO, pipeline_run

MONITORING = REPO / "docs" / "monitoring"
PROMQL_WORDS = {
    "sum",
    "by",
    "rate",
    "increase",
    "histogram_quantile",
    "max",
    "le",
    "on",
    "job",
    "instance",
    "status",
    "job_name",
    "humanizePercentage",
    "value",
    "labels",
    "group_left",
    "and",
    "or",
    "unless",
    "offset",
}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: `make test` installs Debian's prometheus package"
    return path


def test_alert_rules_pass_promtool() -> None:
    check = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"], cwd=MONITORING, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "4 rules found" in check.stdout
    unit = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=MONITORING,
        capture_output=True,
        text=True,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


def _names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b\d+(ms|[smhdwy])\b", "", expr)  # offsets
    words = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", expr))
    return {w for w in words if w not in PROMQL_WORDS and not w.isupper()}


def _used_metrics() -> set[str]:
    """The metric names the shipped Grafana panels and alert rules use."""
    used: set[str] = set()
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= _names(target["expr"])
    for line in (MONITORING / "alerts.yml").read_text().splitlines():
        if line.strip().startswith("expr:") or line.startswith("            "):
            used |= _names(line.split("expr:")[-1])
    assert used, "no metric names found"
    return used


#: used by panels or alerts, but not labelled by job — or, for the success rate, absent
#: until an execution ended (a ratio of nothing is no data, not 0)
_NOT_PER_JOB = {"memory_usage", "cpu_usage", "thread_count", "job_success_rate"}


def _missing_zero_series(exposition: str, job: str) -> list[str]:
    """The per-job metrics of the panels and alerts without a series of ``job`` at 0."""
    missing = []
    for name in sorted(_used_metrics() - _NOT_PER_JOB):
        pattern = rf'^{name}{{(?:[^}}]*,)?job_name="{re.escape(job)}"[^}}]*}} 0\.0$'
        if not re.search(pattern, exposition, re.M):
            missing.append(name)
    return missing


def test_every_per_job_series_exists_at_zero_for_a_known_job() -> None:
    exposition = PipelineMetrics(known_jobs=lambda: ["orders"]).exposition().decode()
    assert 'checkpoint_failures_total{job_name="orders"} 0.0' in exposition
    for status in ("COMPLETED", "FAILED", "CANCELLED"):
        assert f'job_execution_count_total{{job_name="orders",status="{status}"}} 0.0' in exposition
    assert _missing_zero_series(exposition, "orders") == []
    assert 'job_success_rate{job_name="orders"}' not in exposition


async def test_metrics_of_a_job_exist_at_zero_right_after_it_is_registered(
    live: Live, tmp_path: Path
) -> None:
    job = {
        "name": "fresh",
        "source": {"type": "counter", "config": {"count": 5}},
        "sink": {"type": "file", "config": {"path": str(tmp_path / "out")}},
    }
    async with live.client() as c:
        assert (await c.post("/api/jobs", json=job)).status_code == 201
        exposition = (await c.get("/metrics")).text
    assert 'checkpoint_failures_total{job_name="fresh"} 0.0' in exposition
    assert 'job_execution_count_total{job_name="fresh",status="FAILED"} 0.0' in exposition
    assert _missing_zero_series(exposition, "fresh") == []


def test_dashboard_and_alerts_use_only_exported_metrics() -> None:
    exported = PipelineMetrics().exposition().decode()
    families = set(re.findall(r"^# TYPE (\S+) (\S+)", exported, re.M))
    names = set()
    for name, kind in families:
        names.add(name)
        if kind == "counter":
            names |= {name.removesuffix("_total"), f"{name.removesuffix('_total')}_total"}
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    used = _used_metrics()
    assert used - names == set(), f"not exported: {sorted(used - names)}"
    for required in (
        "job_execution_count",
        "job_success_rate",
        "job_duration_seconds",
        "records_processed",
        "records_failed",
        "throughput",
        "buffer_size",
        "backpressure_status",
        "dropped_records",
        "checkpoint_count",
        "checkpoint_failures",
        "checkpoint_duration_seconds",
        "memory_usage",
        "cpu_usage",
        "thread_count",
        "process_resident_memory_bytes",
    ):
        assert required in names, required


class _Gateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT


@pytest.fixture
def gateway() -> Any:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    server.block_on_close = False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Gateway.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}", _Gateway.received
    server.shutdown()


def test_run_pushes_metrics_to_a_pushgateway(gateway: Any, tmp_path: Path) -> None:
    url, received = gateway
    (tmp_path / "in.jsonl").write_text("".join(f'{{"i": {i}}}\n' for i in range(40)))
    (tmp_path / "job.yaml").write_text(
        "name: pushed\nsource: {type: file, config: {path: in.jsonl}}\n"
        "sink: {type: file, config: {path: out}}\n"
    )
    run = pipeline_run("run", "--no-progress", "--pushgateway", url, "job.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"metrics pushed to {url}" in run.stderr
    (method, path, body) = received[0]
    assert method == "PUT" and path == "/metrics/job/pipeline-run/job_name/pushed"
    text = body.decode()
    assert 'job_execution_count_total{job_name="pushed",status="COMPLETED"} 1.0' in text
    assert 'records_processed_total{job_name="pushed"} 40.0' in text
    # a foreground run's job is known at its start: every series is pushed, at 0 if nothing
    # happened (an alert on a series that first appears at 1 misses that first event)
    assert 'checkpoint_failures_total{job_name="pushed"} 0.0' in text
    assert 'job_execution_count_total{job_name="pushed",status="FAILED"} 0.0' in text
