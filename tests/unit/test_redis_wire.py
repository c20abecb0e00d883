"""redis_wire's protocol batches the commands issued in one event-loop iteration into one
socket write (each write is a send syscall, the largest CPU cost of a call on loopback)."""

from __future__ import annotations

import asyncio
from typing import Any

from ingest.stores.redis_wire import _Protocol, pack


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True


async def test_commands_of_one_iteration_go_out_in_one_write_and_replies_find_their_calls() -> None:
    protocol = _Protocol(timeout_s=5.0)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    commands = [pack("GET", f"k{n}") for n in range(3)]
    calls = [protocol.send(c) for c in commands]
    assert transport.writes == []  # not yet: at the end of this iteration
    await asyncio.sleep(0)
    assert transport.writes == [b"".join(commands)]

    later = protocol.send(pack("GET", "k3"))
    await asyncio.sleep(0)
    assert transport.writes[1:] == [pack("GET", "k3")]

    protocol.data_received(b"$2\r\nv0\r\n$2\r\nv1\r\n$2\r\nv2\r\n$2\r\nv3\r\n")
    assert [await c for c in [*calls, later]] == [b"v0", b"v1", b"v2", b"v3"]


async def test_commands_queued_on_a_connection_that_fails_are_not_written() -> None:
    protocol = _Protocol(timeout_s=5.0)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    call = protocol.send(pack("GET", "k"))
    protocol.abort(ConnectionError("gone"))
    await asyncio.sleep(0)
    assert transport.aborted
    assert transport.writes == []
    assert call.exception() is not None
