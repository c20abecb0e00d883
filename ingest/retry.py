"""Retry policies, declared once and named, rather than ad-hoc loops."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: delay(n) for the n-th consecutive failure."""

    base_s: float = 0.1
    cap_s: float = 5.0

    def delay(self, failures: int) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** max(failures - 1, 0))
        return random.uniform(ceiling / 2, ceiling)


# The writer retries a PostgreSQL outage for as long as it lasts: events wait in the stream.
WRITER_BACKOFF = Backoff(base_s=0.2, cap_s=5.0)
