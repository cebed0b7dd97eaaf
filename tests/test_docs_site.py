"""The documentation site builds with MkDocs in strict mode (a broken link or a page
missing from the navigation fails), including the pages generated from the code."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import BIN, REPO


def test_docs_build_strict(tmp_path: Path) -> None:
    build = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    options = (tmp_path / "site" / "reference" / "options" / "index.html").read_text()
    assert "max_poll_records" in options and "exactly_once" in options
    assert "<!-- options:" not in options
    api = (tmp_path / "site" / "reference" / "rest-api" / "index.html").read_text()
    assert "/api/jobs/{name}/start" in api
