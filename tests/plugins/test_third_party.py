"""A third-party connector, built and pip-installed, is discovered and usable.

Three throwaway distributions are built with hatchling and installed with pip into a
target directory that the ``pipeline-run`` subprocesses put on their path (so the
test environment itself is left as it was):

- ``pipeline-connector-counter``: a working ``counter`` source;
- ``pipeline-connector-broken``: its plugin module fails to import;
- ``pipeline-connector-counter-clone``: registers ``counter`` again (a conflict).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import pipeline_run

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "{version}"
dependencies = []

[project.entry-points."pipeline.connectors"]
{entry} = "{package}.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]
"""

COUNTER_PLUGIN = '''\
from collections.abc import AsyncIterator
from typing import Any

import attrs

from pipeline_core import Batch, Source, hookimpl


@attrs.define(frozen=True, kw_only=True)
class CounterConfig:
    count: int
    start: int = 0


class CounterSource(Source[CounterConfig]):
    """Emits start, start+1, ... as {{"n": i}} records."""

    type_name = "counter"
    config_cls = CounterConfig

    async def open(self, ctx: Any, restored_position: dict | None) -> None:
        await super().open(ctx, restored_position)
        self.next = restored_position["next"] if restored_position else self.config.start

    async def read(self) -> AsyncIterator[Batch]:
        end = self.config.start + self.config.count
        while self.next < end:
            stop = min(end, self.next + self.ctx.batch_size)
            batch = [{{"n": i, "by": "{dist}"}} for i in range(self.next, stop)]
            self.next = stop
            yield Batch(batch, {{"next": stop}})


@hookimpl
def pipeline_register_sources(registry: Any) -> None:
    registry.add(CounterSource)
'''

JOB = """\
name: third-party
source:
  type: counter
  config: {{count: 1000, start: 5}}
transform:
  - {{type: filter, function: "fns:even"}}
sink:
  type: file
  config: {{path: {out}}}
"""


def make_dist(root: Path, dist: str, entry: str, plugin_source: str) -> Path:
    package = dist.replace("-", "_")
    src = root / dist / "src" / package
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "plugin.py").write_text(plugin_source)
    (root / dist / "pyproject.toml").write_text(
        PYPROJECT.format(dist=dist, version="1.2.3", entry=entry, package=package)
    )
    return root / dist


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """distribution name → the directory it is installed in (one each, so that a test
    puts on the path exactly the distributions it wants)."""
    root = tmp_path_factory.mktemp("thirdparty")
    sources = {
        "pipeline-connector-counter": ("counter", COUNTER_PLUGIN.format(dist="counter")),
        "pipeline-connector-broken": ("broken", "raise ImportError('needs libfoo 2.0')\n"),
        "pipeline-connector-counter-clone": ("counterclone", COUNTER_PLUGIN.format(dist="clone")),
    }
    targets = {}
    for dist, (entry, plugin_source) in sources.items():
        project = make_dist(root, dist, entry, plugin_source)
        targets[dist] = root / "site" / dist
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(targets[dist]),
                str(project),
            ],
            check=True,
        )
    return targets


def only(site: dict[str, Path], *dists: str) -> dict[str, str]:
    """Environment for a subprocess that sees exactly ``dists`` besides the test env."""
    return {"PYTHONPATH": os.pathsep.join(str(site[d]) for d in dists)}


def test_installed_connector_is_listed_with_its_distribution(site: dict[str, Path]) -> None:
    proc = pipeline_run("connectors", env=only(site, "pipeline-connector-counter"))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "pipeline-connector-counter" in x)
    assert "counter" in line and "1.2.3" in line
    assert "pipeline-connector-file" in proc.stdout  # the repo's own connector still there


def test_installed_connector_runs_in_a_job(site: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text("def even(r):\n    return r['n'] % 2 == 0\n")
    out = tmp_path / "out"
    (tmp_path / "job.yaml").write_text(JOB.format(out=out))
    proc = pipeline_run(
        "run",
        "--no-progress",
        str(tmp_path / "job.yaml"),
        env=only(site, "pipeline-connector-counter"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [
        orjson.loads(line) for p in sorted(out.iterdir()) for line in p.read_bytes().splitlines()
    ]
    assert rows == [{"n": i, "by": "counter"} for i in range(6, 1005, 2)]


def test_broken_plugin_is_reported_by_name_and_distribution(
    site: dict[str, Path], tmp_path: Path
) -> None:
    env = only(site, "pipeline-connector-counter", "pipeline-connector-broken")
    proc = pipeline_run("connectors", env=env)
    assert proc.returncode == 1
    assert (
        "load failure: plugin 'broken' from pipeline-connector-broken failed to load: "
        "ImportError: needs libfoo 2.0" in proc.stderr
    )
    assert "pipeline-connector-counter" in proc.stdout  # the others still load
    # ...and jobs still run, with a warning naming the broken plugin
    (tmp_path / "fns.py").write_text("def even(r):\n    return True\n")
    (tmp_path / "job.yaml").write_text(JOB.format(out=tmp_path / "out"))
    run = pipeline_run("run", "--no-progress", str(tmp_path / "job.yaml"), env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "warning: plugin 'broken' from pipeline-connector-broken failed to load" in run.stderr


def test_two_distributions_with_one_type_name_is_an_error_naming_both(
    site: dict[str, Path], tmp_path: Path
) -> None:
    env = only(site, "pipeline-connector-counter", "pipeline-connector-counter-clone")
    proc = pipeline_run("connectors", env=env)
    assert proc.returncode == 1
    expected = (
        "source type 'counter' is registered by more than one distribution: "
        "pipeline-connector-counter (plugin 'counter') and "
        "pipeline-connector-counter-clone (plugin 'counterclone')"
    )
    assert expected in proc.stderr.replace("\n", " ")
    (tmp_path / "fns.py").write_text("def even(r):\n    return True\n")
    (tmp_path / "job.yaml").write_text(JOB.format(out=tmp_path / "out"))
    run = pipeline_run("run", str(tmp_path / "job.yaml"), env=env, cwd=tmp_path)
    assert run.returncode == 2
    assert f"error: job 'third-party', source: field 'type': {expected}" in run.stderr.replace(
        "\n", " "
    )
    assert "Traceback" not in run.stderr
