"""One Redis connection for the storefront's hot path: RESP over an asyncio Protocol, replies
parsed by hiredis, any number of calls in flight on it (Redis answers in order).

Every personalised recommendations request makes one Redis call, so its CPU matters. Through
redis-py's client it cost ~340 µs of CPU per call on the 2-core AMD VM, against ~80 µs here
(docs/benchmarks.md, bench/redis_read.py); this read's previous version, on redis-py's
connections and pool without its client, cost ~170 µs in a scratch A/B. redis-py runs each
send under wait_for (a task per command), reads through a StreamReader under a timeout
context and takes a pool lock. Here a call is one future, the commands of one event-loop
iteration go out in one write (concurrent requests share a send syscall, the largest cost of
a call on loopback: scratch, 8 concurrent readers, ~27 -> ~13-23 µs of CPU per call), and one
timer per connection watches for late replies. Everything else in Nova keeps redis-py; this
serves one read-only script (redis_script.py).

Failure semantics: a reply that does not come within `timeout_s`, a lost connection or a
protocol error closes the connection and fails every call in flight on it with
ConnectionError; the next call connects afresh. A cancelled call's future stays queued, so its
reply, when it comes, is dropped and never read as the next call's.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url

ReplyError = hiredis.ReplyError


def pack(*args: str | int | bytes) -> bytes:
    """A command as RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout_s: float) -> None:
        self._reader = hiredis.Reader()
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._deadlines: deque[float] = deque()  # per waiting call, when its reply is late
        self._timeout_s = timeout_s
        self._watchdog: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._outgoing: list[bytes] = []  # commands of this loop iteration, sent together

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                waiter = self._waiting.popleft()
                self._deadlines.popleft()
                if not waiter.done():  # a cancelled or timed-out call: its reply is dropped
                    waiter.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self.abort(ConnectionError(f"redis protocol error: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("redis closed the connection") if exc is None else exc)

    def abort(self, exc: Exception) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.transport is not None:
            self.transport.abort()
        self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self._deadlines.clear()
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError(str(exc) or type(exc).__name__))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiting.append(waiter)
        self._deadlines.append(loop.time() + self._timeout_s)
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(command)
        if self._watchdog is None:
            self._watchdog = loop.call_at(self._deadlines[0], self._check)
        return waiter

    def _flush(self) -> None:
        """One write (one send syscall, ~30-60 µs of CPU on loopback here) for every command
        issued in the loop iteration."""
        commands, self._outgoing = self._outgoing, []
        if not self.closed and self.transport is not None:
            self.transport.write(b"".join(commands))

    def _check(self) -> None:
        """One timer per connection, not one per call (a timer handle per call cost a heap
        push and a cancel on every request): at the oldest call's deadline, either its reply
        came and the timer moves on to the next oldest call, or the connection goes."""
        self._watchdog = None
        if not self._deadlines or self.closed:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._deadlines[0]:
            # Redis stuck or a partition: the calls behind this one may retry on a fresh one.
            self.abort(ConnectionError(f"no redis reply within {self._timeout_s}s"))
        else:
            self._watchdog = loop.call_at(self._deadlines[0], self._check)

    @property
    def in_flight(self) -> int:
        return len(self._waiting)


class RedisWire:
    """A lazily (re)connected, multiplexed connection. Replies come back as hiredis gives them:
    bytes, ints, lists, and ReplyError instances for error replies (not raised)."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 1.0,
        timeout_s: float = 2.0,
        max_in_flight: int = 256,
        client_name: str | None = None,
    ) -> None:
        self._params = parse_url(url)
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        self._max_in_flight = max_in_flight
        self._client_name = client_name
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def call(self, command: bytes) -> Any:
        """Sends a packed command and waits for its reply. ConnectionError when the connection
        fails or the reply is late; OverflowError when too many calls already wait."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        if protocol.in_flight >= self._max_in_flight:
            raise OverflowError(f"{protocol.in_flight} redis calls already in flight")
        return await protocol.send(command)

    async def _connected(self) -> _Protocol:
        # Calls that arrive while connecting share the one attempt.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connect_done)
        return await asyncio.shield(self._connecting)

    def _connect_done(self, attempt: asyncio.Future[_Protocol]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._protocol = attempt.result()

    async def _connect(self) -> _Protocol:
        p = self._params
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if p.get("connection_class") is UnixDomainSocketConnection:
                    _, protocol = await loop.create_unix_connection(
                        lambda: _Protocol(self._timeout_s), p["path"]
                    )
                else:
                    tls = (
                        ssl.create_default_context()
                        if p.get("connection_class") is SSLConnection
                        else None
                    )
                    _, protocol = await loop.create_connection(
                        lambda: _Protocol(self._timeout_s),
                        p.get("host", "localhost"),
                        p.get("port", 6379),
                        ssl=tls,
                    )
        except TimeoutError as exc:
            raise ConnectionError(f"no redis connection within {self._connect_timeout_s}s") from exc
        try:  # the handshake's replies are watched for lateness like any other
            for reply in await asyncio.gather(*(protocol.send(c) for c in self._handshake())):
                if isinstance(reply, ReplyError):
                    raise ConnectionError(f"redis refused the handshake: {reply}")
        except BaseException:
            protocol.abort(ConnectionError("handshake failed"))
            raise
        return protocol

    def _handshake(self) -> list[bytes]:
        p = self._params
        commands = []
        if p.get("password"):
            user = p.get("username")
            commands.append(
                pack("AUTH", user, p["password"]) if user else pack("AUTH", p["password"])
            )
        if p.get("db"):
            commands.append(pack("SELECT", p["db"]))
        if self._client_name:
            commands.append(pack("CLIENT", "SETNAME", self._client_name))
        return commands

    async def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
