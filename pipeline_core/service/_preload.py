"""Imported once by the fork server that starts worker processes (never elsewhere).

Discovering plugins imports every connector and its client library (~0.3 s); doing it
here, once, lets each worker start from a fork that has them already, instead of paying
it per execution. A worker whose owner registered extra plugin modules discovers again.
"""

from __future__ import annotations

import logging

import pipeline_core.runtime.runner  # noqa: F401 - the runtime, imported once
from pipeline_core.plugins.manager import Plugins, load_plugins

__all__ = ["PLUGINS"]

PLUGINS: Plugins | None
try:
    PLUGINS = load_plugins()
    # connectors register their classes by reference; import them here, once, so that no
    # worker pays for it (one that cannot be loaded fails the job that uses it, clearly)
    for _registry in PLUGINS.registries().values():
        _registry.load_all()
except Exception:  # a worker then discovers (and reports) on its own
    logging.getLogger("pipeline_core.executor").exception("plugin discovery failed")
    PLUGINS = None
