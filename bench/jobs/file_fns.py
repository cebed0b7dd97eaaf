"""The file benchmark's step functions; the hand-written loop calls the same ones."""

from __future__ import annotations

from typing import Any


def keep(r: dict[str, Any]) -> bool:
    return r["status"] == "paid"


def enrich(r: dict[str, Any]) -> dict[str, Any]:
    r["amount_cents"] = int(r["amount"] * 100)
    r["user"] = r["user"].upper()
    return r
