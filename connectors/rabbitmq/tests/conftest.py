"""Fixtures of the rabbitmq connector's tests; the helpers live in rabbitmq_helpers.py (a unique
module name: several connectors' test folders are on sys.path in one run)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rabbitmq_helpers import *  # noqa: F403
