"""MkDocs hook: pages generated from the code at build time, so they cannot drift.

- ``<!-- options: module:Class -->`` → a table of the attrs config class's options, their
  types and defaults, and the ``#:`` comment above each field;
- ``<!-- openapi -->`` → the REST API reference from ``openapi_document()``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import attrs

_OPTIONS = re.compile(r"<!-- options: ([\w.]+):(\w+) -->")


def _comments(cls: type) -> dict[str, str]:
    """``#:`` comment lines directly above each field in the class body."""
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        m = re.match(r"(\w+)\s*:", stripped)
        if m and pending:
            out[m.group(1)] = " ".join(pending)
        pending = []
    return out


def _default(field: attrs.Attribute[Any]) -> str:
    d = field.default
    if d is attrs.NOTHING:
        return "(required)"
    if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
        d = d.factory()  # type: ignore[union-attr]
    return f"`{d!r}`"


def options_table(module: str, name: str) -> str:
    cls = getattr(importlib.import_module(module), name)
    notes = _comments(cls)
    rows = ["| option | type | default | meaning |", "|---|---|---|---|"]
    for f in attrs.fields(cls):
        kind = getattr(f.type, "__name__", None) or str(f.type)
        text = notes.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{kind}` | {_default(f)} | {text} |")
    return "\n".join(rows)


def openapi_reference() -> str:
    from pipeline_core.api import openapi_document

    doc = openapi_document()
    lines = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            lines.append(f"### `{method.upper()} {path}`\n")
            lines.append(op["summary"] + "\n")
            if op.get("security"):
                lines.append("Needs a bearer token.\n")
            params = op.get("parameters", [])
            if params:
                lines.append("| parameter | in | type |\n|---|---|---|")
                lines += [f"| `{p['name']}` | {p['in']} | {p['schema']['type']} |" for p in params]
                lines.append("")
            body = op.get("requestBody")
            if body:
                schema = next(iter(body["content"].values()))["schema"]
                lines.append(f"Body: `{schema.get('$ref', '').rsplit('/', 1)[-1]}`\n")
            codes = ", ".join(f"`{c}`" for c in op["responses"])
            lines.append(f"Responses: {codes}\n")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    markdown = _OPTIONS.sub(lambda m: options_table(m.group(1), m.group(2)), markdown)
    if "<!-- openapi -->" in markdown:
        markdown = markdown.replace("<!-- openapi -->", openapi_reference())
    return markdown
