"""bench/serve's comparison of interleaved rounds: ratios pair each Serve round with the no-op
round taken beside it, and the CPU table pools a target's rounds."""

from __future__ import annotations

from bench.serve import Level, _pooled, ratios


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
