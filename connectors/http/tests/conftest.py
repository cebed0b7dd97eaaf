"""Makes the loopback test API (http_test_api.py) importable by the test modules here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
