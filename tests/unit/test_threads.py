"""training/threads.py: independent blocks on one thread per core, BLAS held to one thread
meanwhile, answers in order, nested calls serial, errors raised."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

from training import threads


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "cores", lambda: 2)


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.mark.usefixtures("two_cores")
def test_blocks_run_on_several_threads_and_answer_in_order() -> None:
    seen: set[int] = set()
    barrier = threading.Barrier(2, timeout=10)  # passes only if two blocks run at once

    def square(x: int) -> int:
        seen.add(threading.get_ident())
        if x < 2:
            barrier.wait()
        return x * x

    assert threads.map_blocks(square, range(7)) == [x * x for x in range(7)]
    assert len(seen) == 2


@pytest.mark.usefixtures("two_cores")
def test_blas_runs_on_one_thread_inside_blocks_only() -> None:
    before = _blas_threads()
    inside = threads.map_blocks(lambda _: _blas_threads(), range(4))
    assert all(found == {1} for found in inside)
    assert _blas_threads() == before


@pytest.mark.usefixtures("two_cores")
def test_a_blocks_own_blocks_run_on_its_thread() -> None:
    def outer(_: int) -> set[int]:
        return set(threads.map_blocks(lambda __: threading.get_ident(), range(4)))

    assert all(len(idents) == 1 for idents in threads.map_blocks(outer, range(2)))


@pytest.mark.usefixtures("two_cores")
def test_an_error_in_a_block_is_raised() -> None:
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("block 3")
        return x

    with pytest.raises(ValueError, match="block 3"):
        threads.map_blocks(fail_on_three, range(6))


def test_one_core_runs_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "cores", lambda: 1)
    caller = threading.get_ident()
    assert threads.map_blocks(lambda _: threading.get_ident(), range(3)) == [caller] * 3


def test_cores_are_the_ones_this_process_may_run_on() -> None:
    assert threads.cores() == len(os.sched_getaffinity(0))


CHURN = """
import os, sys
from training import threads
if sys.argv[1] == "off":
    threads.release_freed_memory = lambda: None
threads.cores = lambda: 2

def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def churn(_: int) -> bytearray:
    blocks = [bytearray(100_000) for _ in range(2000)]  # 200 MB in this thread's arena
    return blocks[-1]  # the last one stays: the heap's top is in use, so no automatic trim

before = resident()
kept = threads.map_blocks(churn, range(2))
print(resident() - before)
"""


@pytest.mark.skipif(threads._malloc_trim() is None, reason="malloc_trim is glibc's")
def test_what_the_blocks_freed_goes_back_to_the_system() -> None:
    def grown(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    # Without the trim the two threads' arenas keep ~400 MB that was freed.
    assert grown("off") > 300_000_000
    assert grown("on") < 100_000_000
