"""Recorded-shape Shopify payloads (tests/fixtures/shopify/) and builders of variations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"


def fixture_path(name: str) -> Path:
    return FIXTURES / name


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a JSON fixture, free to modify."""
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


def lines(name: str) -> list[str]:
    """A text fixture's lines, as a file opened for reading would give them."""
    with (FIXTURES / name).open(encoding="utf-8", newline="") as f:
        return list(f)


# Every string of orders_create.json that is personal data; none of it may be stored.
# Short or hex-like fragments are quoted or lengthened: the dump also holds random ids, and
# "ada" or "7946" occur in random hexadecimal.
ORDER_PII = (
    '"ada"',
    "lovelace",
    "example.com",
    "analytical",
    "7946 0958",
    "203.0.113.7",
    "babbage",
    "n1 7aa",
    "london",
    "6200000001",
    "c1-9f3a2b",
    "8d1f2e3a4b5c6d7e",
    "iphone",
)
