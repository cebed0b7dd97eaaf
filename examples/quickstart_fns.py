"""Transform functions of the quickstart job (referenced as ``quickstart_fns:...``)."""

from typing import Any

VAT_RATE = 0.2


def is_paid(order: dict[str, Any]) -> bool:
    """Keep paid orders of at least 20 EUR."""
    return order["status"] == "paid" and order["amount"] >= 20


def add_vat(order: dict[str, Any]) -> dict[str, Any]:
    """Add the VAT and the total to an order."""
    vat = round(order["amount"] * VAT_RATE, 2)
    return {**order, "vat": vat, "total": round(order["amount"] + vat, 2)}
