"""``pipeline-run validate --connect`` (docs/connectors/http.md, "validate --connect"):
the http source and sink reach the loopback test API; a closed port or refused
credentials are one error line per component, without a secret."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from http_test_api import Api

PIPELINE_RUN = str(Path(sys.executable).parent / "pipeline-run")
JOB = """\
name: connect
type: BATCH_ROLLER
source: {type: http, config: {url: '%(source)s', records_path: data%(auth)s}}
sink: {type: http, config: {url: '%(sink)s'%(auth)s}}
"""


def validate(
    tmp_path: Path, source: str, sink: str, auth: str = ""
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "job.yaml").write_text(JOB % {"source": source, "sink": sink, "auth": auth})
    return subprocess.run(
        [PIPELINE_RUN, "validate", "--connect", "job.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "API_TOKEN": "s3cr3t-token"},
        timeout=60,
    )


def closed_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_the_api_is_reached(tmp_path: Path) -> None:
    with Api(10) as api:
        proc = validate(tmp_path, f"{api.base}/page", f"{api.base}/collect")
        assert api.hits  # the source's GET did arrive
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: job 'connect'") and proc.stderr == ""


def test_a_closed_port_is_one_line_per_component_without_credentials(tmp_path: Path) -> None:
    where = f"http://ada:s3cr3t@127.0.0.1:{closed_port()}"
    proc = validate(tmp_path, f"{where}/page?api_key=s3cr3t", f"{where}/collect")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "job 'connect', source (http)",
        "job 'connect', sink (http)",
    ], lines
    port = where.rsplit(":", 1)[1]
    assert f"cannot reach http://127.0.0.1:{port}/page: ConnectError" in lines[0], lines
    assert f"cannot reach http://127.0.0.1:{port}/collect: ConnectError" in lines[1], lines
    assert "s3cr3t" not in proc.stderr + proc.stdout


def test_refused_credentials_are_named_and_not_shown(tmp_path: Path) -> None:
    auth = ", auth: {type: bearer, token: '${env:API_TOKEN}'}"  # the API wants another
    with Api(10) as api:
        proc = validate(tmp_path, f"{api.base}/bearer", f"{api.base}/bearer", auth)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, lines
    assert f"GET {api.base}/bearer answered 401 Unauthorized: check the auth" in lines[0]
    assert f"HEAD {api.base}/bearer answered 401 Unauthorized: check the auth" in lines[1]
    assert "s3cr3t" not in proc.stderr + proc.stdout


def test_a_source_url_that_is_not_there_is_reported(tmp_path: Path) -> None:
    with Api(10) as api:
        proc = validate(tmp_path, f"{api.base}/nothing-here", f"{api.base}/collect")
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert "source (http)" in line and f"GET {api.base}/nothing-here answered 404" in line
