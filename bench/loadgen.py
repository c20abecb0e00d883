"""HTTP load generator: keep-alive connections on raw asyncio streams, in its own process.

Python HTTP clients cost more CPU than the server under test on a 2-core machine; this one
sends pre-serialised requests and parses only the status line, headers and the small JSON
answer. Modes: `closed` (C connections, each sends its next request when the last answered:
maximum throughput) and `open` (requests scheduled at a fixed rate; latency counts from the
scheduled time, so a stalled server cannot hide its queueing: no coordinated omission).

Input: a pickle of {"paths": [str], "headers": {...}} for GET requests, or of
{"bodies": [bytes], "path": str, "headers": {name: value}} for POSTs. The bodies are
a pool used round-robin; on every pass after the first, event ids beginning "ev-" are rewritten
("ev-<pass>-...") so each request carries new events.
Output (stdout): JSON with per-request records [t_sent, latency_s, status, accepted,
persisted, promoted, answer_cache_hit] for the caller to summarise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Any

PERSISTED_STATES = ("guest", "authenticated")


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes, bool]:
        """Status, body, and whether the answer came from Nova's answer cache."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(head + body)
        await self.writer.drain()
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length, chunked, close, cached = 0, False, False, False
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
            elif name == b"x-nova-cache":
                cached = value.strip() == b"hit"
        payload = await self._chunked() if chunked else await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.reader = self.writer = None
        return status, payload, cached

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        out = b""
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return out
            out += chunk[:-2]


def head_for(
    path: str, host: str, headers: dict[str, str], length: int, method: str = "POST"
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _posts(spec: dict[str, Any], host: str) -> Any:
    pool: list[bytes] = spec["bodies"]

    def request(i: int) -> tuple[bytes, bytes]:
        body = pool[i % len(pool)]
        if i >= len(pool):
            body = body.replace(b'"id": "ev-', b'"id": "ev-%d-' % (i // len(pool)))
        return head_for(spec["path"], host, spec["headers"], len(body)), body

    return request


def parse(status: int, payload: bytes) -> tuple[int, int, int]:
    if status != 202:
        return 0, 0, 0
    answer = json.loads(payload)  # an ingest answer; the ingress benchmark's no-op has none
    accepted = answer.get("accepted", 0)
    persisted = accepted if answer.get("privacy_state") in PERSISTED_STATES else 0
    return accepted, persisted, answer.get("promoted", 0)


async def run(args: argparse.Namespace, spec: dict[str, Any]) -> list[list[float]]:
    host = f"{args.host}:{args.port}"
    if "paths" in spec:  # GET requests: one path each, round-robin
        paths: list[str] = spec["paths"]
        heads = [head_for(p, host, spec["headers"], 0, "GET") for p in paths]

        def request(i: int) -> tuple[bytes, bytes]:
            return heads[i % len(heads)], b""

    else:
        request = _posts(spec, host)
    records: list[list[float]] = []
    next_index = 0
    start = time.perf_counter()
    deadline = start + args.duration

    async def one(conn: Connection, i: int, scheduled: float) -> None:
        try:
            status, payload, cached = await conn.request(*request(i))
        except (OSError, asyncio.IncompleteReadError):
            conn.writer = conn.reader = None
            status, payload, cached = 599, b"", False
        done = time.perf_counter()
        records.append(
            [scheduled - start, done - scheduled, status, *parse(status, payload), int(cached)]
        )

    async def closed_worker() -> None:
        nonlocal next_index
        conn = Connection(args.host, args.port)
        while time.perf_counter() < deadline:
            i, next_index = next_index, next_index + 1
            await one(conn, i, time.perf_counter())

    async def open_worker(queue: asyncio.Queue[tuple[int, float] | None]) -> None:
        conn = Connection(args.host, args.port)
        while (item := await queue.get()) is not None:
            i, scheduled = item
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            await one(conn, i, scheduled)

    if args.mode == "closed":
        await asyncio.gather(*(closed_worker() for _ in range(args.concurrency)))
    else:
        queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
        n = int(args.rate * args.duration)
        for i in range(n):
            queue.put_nowait((i, start + i / args.rate))
        for _ in range(args.concurrency):
            queue.put_nowait(None)
        await asyncio.gather(*(open_worker(queue) for _ in range(args.concurrency)))
    return records


def spawn(
    port: int, spec: dict[str, Any], mode: str, concurrency: int, duration: float, rate: float = 0.0
) -> list[list[float]]:
    """Run the load generator in its own process (so it does not share a GIL with anything
    under test) and return its records."""
    with tempfile.NamedTemporaryFile(suffix=".pickle") as f:
        pickle.dump(spec, f)
        f.flush()
        args = [
            "--port",
            str(port),
            "--spec",
            f.name,
            "--mode",
            mode,
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
            "--rate",
            str(rate),
        ]
        out = subprocess.run(
            [sys.executable, "-m", "bench.loadgen", *args],
            capture_output=True,
            check=True,
            timeout=duration + 120,
        )
    return json.loads(out.stdout)["records"]  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spec", required=True, help="pickle with bodies, path, headers")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=100.0, help="open mode: requests/s")
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    with open(args.spec, "rb") as f:
        spec = pickle.load(f)
    records = asyncio.run(run(args, spec))
    json.dump({"records": records}, sys.stdout)


if __name__ == "__main__":
    main()
