"""API tokens: a read-only and an admin scope.

Tokens come from the environment — ``PIPELINE_API_ADMIN_TOKENS`` and
``PIPELINE_API_READ_TOKENS`` (comma-separated; ``${file:/run/secrets/x}`` references are
resolved) — and/or ``PIPELINE_API_TOKENS_FILE``, a file of ``admin TOKEN`` / ``read
TOKEN`` lines (a Kubernetes secret mounted as a file). Requests carry
``Authorization: Bearer TOKEN``. GET needs a read or admin token, every other method an
admin token. ``/healthz`` and the dashboard page are open (the page asks for a token when
the API wants one); ``/metrics`` is open unless ``PIPELINE_METRICS_PUBLIC=false``.

With no token configured at all, the API is open — and ``serve`` binds to 127.0.0.1 by
default and says so at start.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from pipeline_core.config.secrets import resolve_references

__all__ = ["Tokens"]


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    return [t.strip() for t in resolve_references(value).split(",") if t.strip()]


@attrs.frozen
class Tokens:
    admin: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset()
    metrics_public: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.admin or self.read)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        env = os.environ if environ is None else environ
        admin = _split(env.get("PIPELINE_API_ADMIN_TOKENS"))
        read = _split(env.get("PIPELINE_API_READ_TOKENS"))
        path = env.get("PIPELINE_API_TOKENS_FILE")
        if path:
            for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                scope, _, token = line.partition(" ")
                if scope not in ("admin", "read") or not token.strip():
                    raise ValueError(
                        f"{path}:{n}: expected 'admin TOKEN' or 'read TOKEN', got {line[:20]!r}…"
                    )
                (admin if scope == "admin" else read).append(token.strip())
        public = env.get("PIPELINE_METRICS_PUBLIC", "true").lower() not in ("0", "false", "no")
        return cls(frozenset(admin), frozenset(read), public)

    def scope_of(self, token: str | None) -> str | None:
        """``"admin"``, ``"read"`` or None for an unknown token (constant-time compares)."""
        if not token:
            return None
        found = None
        for scope, tokens in (("admin", self.admin), ("read", self.read)):
            for t in tokens:
                if hmac.compare_digest(t.encode(), token.encode()):
                    found = found or scope
        return found
