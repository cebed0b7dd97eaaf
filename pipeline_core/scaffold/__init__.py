"""``pipeline-run new-connector NAME``: a ready-to-install connector distribution."""

from __future__ import annotations

import keyword
import re
from importlib import metadata, resources
from pathlib import Path

from pipeline_core.errors import ConfigError, Problem

__all__ = ["create_connector"]

_TEMPLATES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "src/{package}/__init__.py": "init.py.tmpl",
    "src/{package}/config.py": "config.py.tmpl",
    "src/{package}/source.py": "source.py.tmpl",
    "src/{package}/sink.py": "sink.py.tmpl",
    "src/{package}/plugin.py": "plugin.py.tmpl",
    "src/{package}/py.typed": None,
    "tests/test_conformance.py": "test_conformance.py.tmpl",
    "tests/test_job.py": "test_job.py.tmpl",
}


def create_connector(name: str, directory: Path) -> Path:
    """Write ``pipeline-connector-NAME`` into ``directory``; returns its folder."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise ConfigError(
            Problem(
                f"connector name {name!r}: use lower-case letters, digits and _ "
                "(it becomes the type name and part of the package name)",
                field="name",
            )
        )
    package = f"pipeline_connector_{name}"
    dist = f"pipeline-connector-{name.replace('_', '-')}"
    try:
        installed = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        pass
    else:  # the new one would replace it on install, or be shadowed by it
        raise ConfigError(
            Problem(
                f"connector name {name!r}: a distribution {dist} {installed.version} is "
                "already installed; choose another name",
                field="name",
            )
        )
    root = directory / dist
    if root.exists():
        raise ConfigError(Problem(f"{root} already exists", field="directory"))
    camel = "".join(part.capitalize() for part in name.split("_"))
    values = {
        "name": name,
        "package": package,
        "Camel": camel,
        "dist": dist,
    }
    templates = resources.files("pipeline_core.scaffold").joinpath("templates")
    for target, template in _TEMPLATES.items():
        path = root / target.format(package=package)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "" if template is None else templates.joinpath(template).read_text()
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path.write_text(text)
    return root
