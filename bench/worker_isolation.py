"""Benchmark: what worker processes buy and cost in ``pipeline-run serve``.

Runs a real ``serve`` (SQLite metadata, API on loopback) and measures, as a user meets it:

1. ``/healthz`` latency (polled every 50 ms) while a job whose step sleeps 20 s and a
   CPU-bound job run on the instance — the control plane must not wait on user code;
2. the wall time of one CPU-bound job alone, then of two started together (two worker
   processes on two cores: the ratio should be near 1, not 2);
3. the time from ``jobs start`` to COMPLETED of a one-record job (worker start-up,
   prepare, run, record), median of several.

    python bench/worker_isolation.py [--spin 2000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

BIN = Path(sys.executable).parent

FNS = """\
import time

def nap(record):
    time.sleep(20)
    return record

def spin(record):
    total = 0
    for i in range({spin}):
        total += i
    return {{**record, "total": total}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def job(name: str, data: Path, out: Path, step: str, records_config: str = "") -> str:
    return (
        f"name: {name}\nsource: {{type: file, config: {{path: {data}}}}}\n"
        f'transform: [{{type: map, function: "fns:{step}"}}]\n'
        f"sink: {{type: file, config: {{path: {out}}}}}\n{records_config}"
    )


def status(url: str, eid: str) -> str:
    return str(httpx.get(f"{url}/api/executions/{eid}", timeout=10).json()["status"])


def start(url: str, name: str) -> str:
    r = httpx.post(f"{url}/api/jobs/{name}/start", timeout=10)
    r.raise_for_status()
    return str(r.json()["execution_id"])


def wait_done(url: str, ids: list[str]) -> float:
    began = time.perf_counter()
    while any(status(url, e) not in ("COMPLETED", "FAILED", "CANCELLED") for e in ids):
        time.sleep(0.02)
    return time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spin", type=int, default=2_000_000, help="loop length per record")
    ap.add_argument("--records", type=int, default=40, help="records of a CPU-bound job")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    jobs = root / "jobs"
    jobs.mkdir()
    (jobs / "fns.py").write_text(FNS.format(spin=args.spin))
    one, many = root / "one.jsonl", root / "many.jsonl"
    one.write_bytes(b'{"i": 0}\n')
    many.write_bytes(b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(args.records)))
    cfg = "config: {source_batch_size: 1, sink_batch_size: 1}\n"
    (jobs / "nap.yaml").write_text(job("nap", one, root / "o-nap", "nap"))
    for n in ("a", "b"):
        (jobs / f"spin-{n}.yaml").write_text(job(f"spin-{n}", many, root / f"o-{n}", "spin", cfg))
    (jobs / "tiny.yaml").write_text(
        "name: tiny\nsource: {type: file, config: {path: " + str(one) + "}}\n"
        "sink: {type: file, config: {path: " + str(root / "o-tiny") + "}}\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PIPELINE_DATABASE_URL": f"sqlite:///{root / 'meta.db'}"}
    serve = subprocess.Popen(
        [str(BIN / "pipeline-run"), "serve", "--jobs", str(jobs), "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(root / "serve.log").open("wb"),
    )
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # 1. /healthz while a step sleeps and another burns CPU
        ids = [start(url, "nap"), start(url, "spin-a")]
        latencies = []
        until = time.monotonic() + 8
        while time.monotonic() < until:
            t = time.perf_counter()
            httpx.get(f"{url}/healthz", timeout=30).raise_for_status()
            latencies.append(time.perf_counter() - t)
            time.sleep(0.05)
        wait_done(url, ids)
        latencies.sort()
        print(
            f"/healthz during a 20 s sleeping step + a CPU-bound job: {len(latencies)} requests,"
            f" median {statistics.median(latencies) * 1000:.1f} ms,"
            f" p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms,"
            f" max {latencies[-1] * 1000:.1f} ms"
        )
        # 2. one CPU-bound job, then two at once (interleaved, medians)
        alone, both = [], []
        for _ in range(args.repeat):
            alone.append(wait_done(url, [start(url, "spin-a")]))
            both.append(wait_done(url, [start(url, "spin-a"), start(url, "spin-b")]))
        a, b = statistics.median(alone), statistics.median(both)
        print(
            f"CPU-bound job ({args.records} records x {args.spin:,} iterations): alone "
            f"{a:.2f} s, two at once {b:.2f} s → {b / a:.2f}x (1.0 = two cores used, 2.0 = one)"
        )
        # 3. a one-record job from start to COMPLETED
        tiny = [wait_done(url, [start(url, "tiny")]) for _ in range(args.repeat * 2)]
        print(
            f"one-record job, start → COMPLETED through serve: median "
            f"{statistics.median(tiny) * 1000:.0f} ms (min {min(tiny) * 1000:.0f} ms)"
        )
    finally:
        serve.terminate()
        serve.wait(timeout=60)


if __name__ == "__main__":
    main()
