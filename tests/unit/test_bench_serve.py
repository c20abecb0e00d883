"""bench/serve's comparison of interleaved rounds: ratios pair each Serve round with the no-op
round taken beside it, and the CPU table pools a target's rounds and keeps the machine's
counters out of the processes' total."""

from __future__ import annotations

import pytest

from bench import cpu
from bench.serve import Level, _pooled, cpu_table, deployment_setup, ratios
from deployments.recommendations import AUTOSCALING


def level(concurrency: int, round_: int, rps: float, cpu: dict[str, float] | None = None) -> Level:
    return Level(
        concurrency=concurrency,
        rps=rps,
        p50=1.0,
        p99=2.0,
        errors=0,
        cache_hits=0.0,
        cpu=cpu or {},
        requests=int(rps * 20),
        duration_s=20.0,
        replicas=1,
        round=round_,
    )


def test_ratios_pair_rounds_and_levels() -> None:
    noop = [level(8, 1, 1000), level(8, 2, 500), level(32, 1, 800)]
    serve = [level(8, 1, 600), level(8, 2, 400), level(32, 1, 200)]
    assert ratios(serve, noop, 8) == [0.6, 0.8]  # not 600/500 or 400/1000
    assert ratios(serve, noop, 32) == [0.25]


def test_a_round_without_its_noop_counterpart_is_left_out() -> None:
    assert ratios([level(8, 2, 400)], [level(8, 1, 1000)], 8) == []


def test_pooled_rounds_sum_cpu_requests_and_time() -> None:
    pooled = _pooled(
        [level(8, 1, 100, {"replica": 1.0, "proxy": 0.5}), level(8, 2, 50, {"replica": 2.0})]
    )
    assert pooled.cpu == {"replica": 3.0, "proxy": 0.5}
    assert pooled.requests == 3000
    assert pooled.duration_s == 40.0


def test_cpu_table_totals_the_processes_and_lists_the_machine_rows_after() -> None:
    used = {
        "Recommendations replica": 0.6,
        "Redis": 0.3,
        cpu.OTHER: 0.1,
        cpu.IDLE: 3.0,
        cpu.STOLEN: 0.05,
    }
    lines = cpu_table({"Serve": [level(8, 1, 50, used), level(8, 2, 50, used)]})
    rows = {line.split(" | ")[0].removeprefix("| "): line.split(" | ")[1] for line in lines[4:]}
    names = list(rows)
    # 2000 requests pooled: 1.2 s of replica CPU is 600 µs per request.
    assert rows == {
        "Recommendations replica": "600 |",
        "Redis": "300 |",
        "total": "900 |",  # the processes only: not idle time, not the kernel's
        cpu.OTHER: "100 |",
        cpu.IDLE: "3000 |",
        cpu.STOLEN: "50 |",
    }
    assert names[-4:] == ["total", *cpu.MACHINE]


def test_the_report_describes_the_autoscaling_the_code_configures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert deployment_setup() == (
        "the Recommendations deployment autoscaling 1-4 replicas at 0.25 CPU (target 8 ongoing "
        "requests each)"
    )
    # Read when the report is written, not copied into its text.
    monkeypatch.setitem(AUTOSCALING, "target_ongoing_requests", 6)
    assert "(target 6 ongoing requests each)" in deployment_setup()
