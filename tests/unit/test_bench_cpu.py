"""bench/cpu.py: CPU accounting per process group around a benchmark level."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench import cpu

# Burns argv[1] seconds of CPU, then sleeps; argv[2] only puts a name on its command line.
BURN = (
    "import sys, time\n"
    "end = time.process_time() + float(sys.argv[1])\n"
    "while time.process_time() < end: pass\n"
    "time.sleep(60)"
)


@contextmanager
def burning(seconds: float, name: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", BURN, str(seconds), name])
    try:
        yield process
    finally:
        process.kill()
        process.wait(30)


def test_groups_by_command_line() -> None:
    assert cpu.group_of("ray::ServeReplica:recommendations:Recommendations") == (
        "Recommendations replica"
    )
    assert cpu.group_of("/usr/bin/redis-server 127.0.0.1:6379") == "Redis"
    assert cpu.group_of("python -m something.else") is None


def test_children_waited_for_count_as_the_load_generator() -> None:
    def level() -> str:
        subprocess.run([sys.executable, "-c", BURN.replace("60", "0"), "0.3"], check=True)
        return "done"

    result, used = cpu.measured(level)
    assert result == "done"
    assert 0.25 <= used["load generator"] < 2.0


def test_a_process_alive_at_both_readings_is_counted_in_its_group() -> None:
    with burning(0.4, "ServeReplica:noop"):
        _, used = cpu.measured(lambda: time.sleep(2.0))
    # Whatever it burnt before the first reading is not counted.
    assert 0.1 <= used["no-op replica"] <= 0.45


def test_a_process_that_exits_meanwhile_is_counted_up_to_its_last_reading() -> None:
    """Started through a shell that does not wait for it, so it is not this process's child
    (not in RUSAGE_CHILDREN), as an HAProxy worker is not."""
    script = BURN.replace("time.sleep(60)", "time.sleep(0.8)")

    def level() -> None:
        subprocess.run(
            ["sh", "-c", f'"{sys.executable}" -c "$0" 0.5 ServeReplica:noop &', script],
            check=True,
        )
        time.sleep(2.5)  # it burns 0.5 s, sleeps, and is gone before the level ends

    _, used = cpu.measured(level, every=0.2)
    assert 0.4 <= used.get("no-op replica", 0.0) <= 0.7


def test_running_counts_the_processes_with_a_name() -> None:
    before = cpu.running("ServeReplica:bench-test-app:")
    with (
        burning(0.0, "ServeReplica:bench-test-app:A"),
        burning(0.0, "ServeReplica:bench-test-app:B"),
    ):
        time.sleep(0.2)
        assert cpu.running("ServeReplica:bench-test-app:") == before + 2
        assert cpu.running("ServeReplica:bench-test-app:B") == 1


def test_the_machine_counters_cover_every_core_for_the_whole_level() -> None:
    """Processes, the rest of the busy time, idle and stolen time add up to the cores'
    capacity over the level: nothing is counted twice or missed."""
    started = time.monotonic()
    _, used = cpu.measured(lambda: time.sleep(1.5))
    elapsed = time.monotonic() - started
    assert sum(used.values()) == pytest.approx(elapsed * (os.cpu_count() or 1), rel=0.1)
    assert used[cpu.IDLE] > 0.0  # sleeping here leaves a core idle at times


def test_cpu_in_no_group_counts_as_other() -> None:
    with burning(0.6, "bench-test-in-no-group"):
        _, used = cpu.measured(lambda: time.sleep(1.5))
    assert cpu.group_of("bench-test-in-no-group") is None
    assert used[cpu.OTHER] >= 0.4  # other processes on the machine may add to it
