"""Fixtures of the kafka connector's tests; the helpers live in kafka_helpers.py (a unique
module name: several connectors' test folders are on sys.path in one run)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from kafka_helpers import *  # noqa: F403
