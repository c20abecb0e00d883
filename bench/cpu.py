"""Where a benchmark level's CPU went: CPU seconds per process group, read from /proc before and
after the level, divided by the requests answered. On a 2-core machine every process competes
for the same cores, so "the app costs X µs of CPU per request in its replica, Serve's own path
Y, Redis Z" explains a throughput ratio better than the ratio alone.

Linux only (/proc). Processes that start and end inside the level (the load generator) are
counted through resource.getrusage(RUSAGE_CHILDREN); other processes that end inside it (an
HAProxy worker replaced when Serve's replicas change: it serves its open connections, then
exits) up to their last reading, taken every second. Background processes (the Serve
controller, Ray's agents) cost about the same CPU per second whatever the load, so their share
per request grows as throughput falls.

The machine's own counters (/proc/stat) are read around the level too: what the cores spent
outside the groups (the kernel's softirq work for loopback traffic, other processes), what
they left idle, and what the hypervisor took. Idle cores mean the target was not CPU-bound:
something else (one replica's single thread, say) held throughput down.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_TICK = os.sysconf("SC_CLK_TCK")
# Machine-wide figures measured() adds beside the process groups.
OTHER = "not in a group (kernel, other processes)"
IDLE = "idle"
STOLEN = "stolen by the hypervisor"
MACHINE = (OTHER, IDLE, STOLEN)

# (group, substring of the command line or process name), first match wins.
GROUPS: Sequence[tuple[str, str]] = (
    ("Recommendations replica", "ServeReplica:recommendations"),
    ("no-op replica", "ServeReplica:noop"),
    ("other Serve replicas", "ServeReplica"),
    ("plain uvicorn app", "bench.plain_app"),
    ("HAProxy", "haproxy"),
    ("Serve controller and HAProxy manager", "ServeController"),
    ("Serve controller and HAProxy manager", "HAProxyManager"),
    ("Ray system (GCS, raylet, agents)", "gcs_server"),
    ("Ray system (GCS, raylet, agents)", "raylet"),
    ("Ray system (GCS, raylet, agents)", "DashboardAgent"),
    ("Ray system (GCS, raylet, agents)", "dashboard"),
    ("Ray system (GCS, raylet, agents)", "ray/_private"),
    ("Redis", "redis-server"),
    ("PostgreSQL", "postgres"),
)


def _processes() -> dict[int, tuple[str, float]]:
    """pid -> (command line or name, CPU seconds so far)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        fields = rest.split()
        # utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        out[int(entry.name)] = (cmdline or name, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def _machine() -> tuple[float, float, float]:
    """CPU seconds of all cores so far: (busy, idle, stolen), from the first line of
    /proc/stat (user nice system idle iowait irq softirq steal ...); waiting on I/O is idle."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle, stolen = fields[3] + fields[4], fields[7]
    return (sum(fields) - idle - stolen) / _TICK, idle / _TICK, stolen / _TICK


def group_of(command: str) -> str | None:
    for group, needle in GROUPS:
        if needle in command:
            return group
    return None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(run: Callable[[], T], every: float = 1.0) -> tuple[T, dict[str, float]]:
    """run()'s result and the CPU seconds each group used meanwhile; the load generator (this
    process's children, waited for inside run) as "load generator". /proc is read every
    `every` seconds meanwhile, so a process that exits is counted up to its last reading."""
    before, children, machine = _processes(), _children_cpu(), _machine()
    last: dict[int, tuple[str, float]] = {}
    done = threading.Event()

    def read() -> None:
        for pid, (command, seconds) in _processes().items():
            earlier = last.get(pid)
            # An exited process not yet reaped (a zombie) has no command line left: it keeps
            # the one it ran with.
            if earlier is not None and group_of(command) is None:
                command = earlier[0]
            last[pid] = (command, seconds)

    def sample() -> None:
        while not done.wait(every):
            read()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run()
    finally:
        done.set()
        sampler.join()
    read()
    busy, idle, stolen = (b - a for a, b in zip(machine, _machine(), strict=True))
    used: dict[str, float] = {"load generator": _children_cpu() - children}
    for pid, (command, seconds) in last.items():
        group = group_of(command)
        if group is None:
            continue
        previous = before.get(pid)
        # A process that started meanwhile counts from zero; a recycled pid from its new start.
        start = previous[1] if previous is not None and previous[1] <= seconds else 0.0
        used[group] = used.get(group, 0.0) + seconds - start
    # Per-process and machine counters tick apart: a small negative rest is rounding.
    used[OTHER] = max(busy - sum(used.values()), 0.0)
    used[IDLE], used[STOLEN] = idle, stolen
    return result, used


def running(needle: str) -> int:
    """How many processes have `needle` in their command line: a deployment's replicas, each a
    process titled ray::ServeReplica:<app>:<deployment>."""
    return sum(needle in command for command, _ in _processes().values())
