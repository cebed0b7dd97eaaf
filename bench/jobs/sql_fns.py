"""The SQL_TASK benchmark's transform: dict records in, as a job's step functions take them.

The hand-written loops in ``bench/sql_task.py`` and ``bench/mysql_task.py`` call the same
functions, so both sides do the same per-record work.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

VAT = Decimal("1.2")


def keep(r: dict[str, Any]) -> bool:
    return bool(r["amount"] >= 10)


def gross(r: dict[str, Any]) -> dict[str, Any]:
    r["gross"] = r["amount"] * VAT
    return r
