"""The Kubernetes manifests and the Dockerfile use only flags `pipeline-run` has, and
probe the real health route (they cannot be built or applied here: no registry/cluster)."""

from __future__ import annotations

import json
import re

import yaml

from pipeline_core.api import ROUTES
from pipeline_core.cli.main import build_parser
from tests.conftest import REPO


def _parses(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert callable(args.func)


def test_kubernetes_manifests_match_the_cli_and_the_api() -> None:
    docs = list(yaml.safe_load_all((REPO / "deploy" / "kubernetes" / "pipeline.yaml").read_text()))
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "Secret", "ConfigMap"} <= kinds
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (runner,) = pod["containers"]
    _parses([a.replace("$(POD_NAME)", "pod-1") for a in runner["command"][1:]])
    _parses(pod["initContainers"][0]["command"][1:])
    paths = {r.path for r in ROUTES}
    for probe in ("readinessProbe", "livenessProbe"):
        assert runner[probe]["httpGet"]["path"] in paths
    env = {e["name"] for e in runner["env"]}
    assert {"PIPELINE_DATABASE_URL", "PIPELINE_CHECKPOINT_URL", "PIPELINE_API_TOKENS_FILE"} <= env


def test_dockerfile_runs_serve_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    _parses(cmd[1:])
    assert re.search(r"^USER pipeline$", text, re.M)
    assert "/healthz" in text
    for connector in re.search(r'ARG CONNECTORS="([^"]+)"', text).group(1).split():  # type: ignore[union-attr]
        assert (REPO / "connectors" / connector / "pyproject.toml").exists()
