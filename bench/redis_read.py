"""CPU per call of the recommendations hot path's visitor read: the same read-only Lua script
with the same keys, through redis-py's client and through Nova's lean connection
(ingest/stores/redis_wire.py via redis_script.ReadScript), one call at a time, rounds
interleaved so a noisy machine affects both alike. Needs NOVA_BENCH_REDIS_URL or
NOVA_TEST_REDIS_URL."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from bench import report
from ingest.stores.redis_script import ReadScript
from ingest.stores.redis_state import _READ_VISITORS, connect

Call = Callable[[], Awaitable[object]]


async def cpu_per_call(call: Call, n: int) -> float:
    """Microseconds of this process's CPU per call."""
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) / n * 1e6


async def measure(url: str, calls: int, rounds: int) -> dict[str, list[float]]:
    prefix = f"novabench-{uuid.uuid4().hex[:6]}"
    keys = [f"{prefix}:visitor", f"{prefix}:recent", f"{prefix}:cart"]
    client = connect(url)  # Nova's redis-py client, as every other store uses it
    await client.hset(keys[0], mapping={"state": "guest", "last_seen": "2026-12-02T00:00:00"})
    await client.rpush(keys[1], *[str(1000 + n) for n in range(8)])
    await client.sadd(keys[2], "2001", "2002")
    script = client.register_script(_READ_VISITORS)
    wire = ReadScript(url, _READ_VISITORS)
    targets: dict[str, Call] = {
        "redis-py client": lambda: script(keys=keys),
        "lean connection (redis_wire)": lambda: wire(keys),
    }
    try:
        for call in targets.values():  # connect, load the script, warm up
            await cpu_per_call(call, 200)
        results: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(rounds):
            for name, call in targets.items():
                results[name].append(await cpu_per_call(call, calls))
        return results
    finally:
        await wire.close()
        await client.delete(*keys)
        await client.aclose()


def render(results: dict[str, list[float]], calls: int) -> str:
    lines = [
        "## Redis: the visitor read's CPU per call (bench/redis_read.py)",
        "",
        report.stamp(),
        f"The recommendations endpoint's visitor read (one EVALSHA of a read-only Lua script "
        f"over 3 keys: a hash, an 8-item list, a 2-member set), one call at a time, "
        f"{calls} calls per round, rounds interleaved; CPU of the calling process only.",
        "",
        "| client | median µs CPU per call | rounds (µs) |",
        "|---|---|---|",
    ]
    for name, values in results.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        lines.append(f"| {name} | {statistics.median(values):.0f} | {rounds} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("NOVA_BENCH_REDIS_URL") or os.environ["NOVA_TEST_REDIS_URL"]
    results = asyncio.run(measure(url, args.calls, args.rounds))
    text = render(results, args.calls)
    print(text)
    if not args.no_record:
        report.record("redis_read", text)


if __name__ == "__main__":
    main()
