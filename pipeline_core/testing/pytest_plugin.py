"""pytest plugin (entry point ``pytest11``): fixtures for testing jobs and connectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipeline_core.plugins.manager import Plugins, load_plugins


@pytest.fixture
def pipeline_plugins() -> Callable[..., Plugins]:
    """``pipeline_plugins(my_plugin_module, ...)``: Plugins holding the core built-ins and
    exactly the plugin modules given — no entry-point discovery, so tests do not depend
    on what else is installed."""

    def make(*modules: Any) -> Plugins:
        return load_plugins(entry_points=False, extra=modules)

    return make
