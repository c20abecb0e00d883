"""Process-local stores for the embedded backend."""

from __future__ import annotations

from datetime import datetime


class LocalRateLimiter:
    """Fixed one-second windows per shop, counted in this process.

    The embedded backend runs on one machine; each Serve replica enforcing the limit on the
    traffic it sees is the laptop-grade version of the Redis limiter (with N replicas the shop
    may reach N times the limit)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    async def take(self, shop_id: str, n: int, limit_per_s: int, now: datetime) -> float | None:
        second = int(now.timestamp())
        window, used = self._windows.get(shop_id, (second, 0))
        if window != second:
            used = 0
        if used + n > limit_per_s:
            self._windows[shop_id] = (second, used)
            return (second + 1) - now.timestamp()
        self._windows[shop_id] = (second, used + n)
        return None
