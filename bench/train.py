"""bench/train: how long a shop's fit takes and how much memory it needs, and what Ray Train
adds to the same fitting code.

    python -m bench.train [--sizes ml100k,1m,10m] [--no-record]

For each size, the whole fit of a shop (training/pipeline.py: validation split, item-kNN /
EASE / ALS candidates, co-purchase, the re-ranker; what `python -m training fit` runs after
reading the store) runs twice in fresh processes: in the driver alone (Ray Train local mode,
no cluster) and on a local Ray cluster with two Ray Train workers. Peak memory is the largest
memory of the process and all its children (Ray's workers included), sampled every 0.25 s.
Reading the events from the store is not included.

Ray Train's overhead is measured on the data-parallel steps themselves, in one process: the
Gram statistics and the XGBoost fit, run as plain function calls and through Ray Train with
one worker, on a tiny input (the fixed cost) and on a big one (the cost on the compute): the
10M shop's interactions for the Gram, 2M synthetic re-ranker rows for XGBoost. Each of the
four runs is repeated OVERHEAD_ROUNDS times, interleaved (plain, Ray Train, plain, ...), and the
medians are compared: one run of each swung the ratio by a tenth on these shared machines.

Memory is the proportional set size (PSS) summed over the process tree: pages shared between
processes (Ray's object store is mapped into the workers and the raylet) count once in total,
where a sum of resident sizes would count them in every process that maps them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench import report, synthetic

SIZES = {"ml100k": None, "1m": 1_000_000, "10m": 10_000_000}
VISITORS, PRODUCTS = 1_000_000, 50_000
TARGET_SECONDS, TARGET_GIB = 600.0, 8.0
TARGET_FIXED_S, TARGET_RATIO = 15.0, 1.15
OVERHEAD_ROUNDS = 3


# --- the measured child processes ---------------------------------------------------------


def _shop(size: str) -> Any:
    from training import data as data_mod

    if size == "ml100k":
        from bench import movielens

        d = movielens.load()
        rng = np.random.default_rng(0)
        now = 1.8e9
        events = pa.table(
            {
                "user": pa.array(np.asarray(d.user_tokens)[d.users].astype(str)),
                "product_id": pa.array(np.asarray(d.item_tokens)[d.items].astype(str)),
                "kind": pa.array(np.full(len(d.users), "view")),
                "ts": pa.array(now - rng.random(len(d.users)) * 90 * 86_400),
                "ranking_id": pa.nulls(len(d.users), pa.string()),
                "device": pa.nulls(len(d.users), pa.string()),
            }
        )
        baskets = pa.table(
            {"basket": pa.array([], pa.string()), "product_id": pa.array([], pa.string())}
        )
    else:
        shop = synthetic.generate(SIZES[size] or 0, VISITORS, PRODUCTS)
        events, baskets, now = shop.events, shop.baskets, shop.now
    empty = pa.table(
        {
            "ranking_id": pa.array([], pa.string()),
            "user": pa.array([], pa.string()),
            "ts": pa.array([], pa.float64()),
            "device": pa.array([], pa.string()),
            "products": pa.array([], pa.list_(pa.string())),
        }
    )
    window = data_mod.Window.ending(datetime.fromtimestamp(now, UTC), 180)
    return data_mod.ShopData(f"bench-{size}", window, events, empty, baskets), now


def child_fit(size: str, workers: int) -> dict[str, Any]:
    from training import config as training_config
    from training import pipeline

    config = training_config.load()
    config = config.model_copy(
        update={"ray": config.ray.model_copy(update={"num_workers": workers})}
    )
    started = time.perf_counter()
    shop, now = _shop(size)
    generated = time.perf_counter() - started
    if workers > 0:
        from training.distributed import ensure_ray

        t = time.perf_counter()
        ensure_ray()
        ray_init = time.perf_counter() - t
    else:
        ray_init = 0.0
    with tempfile.TemporaryDirectory() as work:
        t = time.perf_counter()
        result = pipeline.fit(shop, None, config, Path(work), now)
        fit = time.perf_counter() - t
    return {
        "size": size,
        "workers": workers,
        "interactions": shop.events.num_rows,
        "generate_s": generated,
        "ray_init_s": ray_init,
        "fit_s": fit,
        "phases": result.seconds,
        "fitted": {f.kind: f.metrics.get("ndcg@10") for f in result.fitted},
        "skipped": result.skipped,
        "ray_workers": result.workers,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child_overhead() -> dict[str, Any]:
    """Plain calls against one-worker Ray Train runs of the same steps."""
    import ray

    from training import config as training_config
    from training import data as data_mod
    from training import rerank
    from training.config import RayConfig
    from training.distributed import GramTask, gram_statistics
    from training.models import build

    config = training_config.load()
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out: dict[str, Any] = {"ray_init_s": time.perf_counter() - t}
    one = RayConfig(num_workers=1, cpus_per_worker=1.0)
    shop, now = _shop("10m")
    matrix = data_mod.interactions(shop.events, config.data, now).matrix
    del shop
    knn = build("item_knn", config.models["item_knn"])
    tiny = matrix[:50]

    def plain_gram(m: Any) -> float:
        t0 = time.perf_counter()
        knn.statistics(m)  # type: ignore[attr-defined]
        return time.perf_counter() - t0

    def ray_gram(m: Any) -> float:
        t0 = time.perf_counter()
        gram_statistics([GramTask("knn", knn.statistics, m)], one, name="overhead")  # type: ignore[attr-defined]
        return time.perf_counter() - t0

    ray_gram(tiny)  # warm: the first run pays for importing Train in the workers
    out["gram"] = _rounds(
        {
            "tiny_plain_s": lambda: plain_gram(tiny),
            "tiny_ray_s": lambda: ray_gram(tiny),
            "plain_s": lambda: plain_gram(matrix),
            "ray_s": lambda: ray_gram(matrix),
        }
    )
    rng = np.random.default_rng(0)
    width = len(rerank.features.names(("cf",)))

    def dataset(queries: int) -> rerank.Dataset:
        qid = np.repeat(np.arange(queries), 100)
        x = rng.random((len(qid), width)).astype(np.float32)
        y = (x[:, 2] + 0.3 * rng.random(len(qid)) > 0.9).astype(np.float32)
        return rerank.Dataset(x, y, qid)

    cfg = config.reranker.model_copy(update={"early_stopping_rounds": 10_000, "rounds": 100})

    def plain_xgb(train: rerank.Dataset, valid: rerank.Dataset) -> float:
        t0 = time.perf_counter()
        rerank.Reranker(cfg, ("cf",)).fit(train, valid)
        return time.perf_counter() - t0

    def ray_xgb(train: rerank.Dataset, valid: rerank.Dataset) -> float:
        t0 = time.perf_counter()
        rerank.Reranker(cfg, ("cf",)).fit_distributed(train, valid, one)
        return time.perf_counter() - t0

    small, small_valid = dataset(20), dataset(5)
    big, big_valid = dataset(20_000), dataset(2_000)
    ray_xgb(small, small_valid)
    out["xgboost"] = _rounds(
        {
            "tiny_plain_s": lambda: plain_xgb(small, small_valid),
            "tiny_ray_s": lambda: ray_xgb(small, small_valid),
            "plain_s": lambda: plain_xgb(big, big_valid),
            "ray_s": lambda: ray_xgb(big, big_valid),
        }
    )
    out["xgboost_rows"] = len(big.y)
    ray.shutdown()
    return out


def _rounds(runs: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Seconds of every run, OVERHEAD_ROUNDS times, the runs interleaved within a round."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(OVERHEAD_ROUNDS):
        for name, run in runs.items():
            seconds[name].append(run())
    return seconds


# --- the parent: runs children, samples their memory, reports -----------------------------


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree_pss_kib(root: int) -> int:
    """PSS of `root` and all its descendants (Ray's raylet, workers and their children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _pss_kib(pid)
        stack += children.get(pid, [])
    return total


def run_child(args: list[str]) -> tuple[dict[str, Any], float]:
    """The child's JSON result and the peak memory (GiB) of its process tree."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.train", *args], stdout=subprocess.PIPE, env=env, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_pss_kib(proc.pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.train {' '.join(args)} failed with status {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1]), peak / 1024**2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train")
    parser.add_argument("--sizes", default="ml100k,1m,10m")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "overhead":
        print(json.dumps(child_overhead()))
        return 0
    if args.child:
        print(json.dumps(child_fit(args.child, args.workers)))
        return 0

    rows = []
    for size in args.sizes.split(","):
        for workers in (0, 2):
            result, peak = run_child(["--child", size, "--workers", str(workers)])
            result["peak_gib"] = peak
            rows.append(result)
            print(json.dumps(result), flush=True)
    overhead, _ = run_child(["--child", "overhead"])
    print(json.dumps(overhead), flush=True)
    body = render(rows, overhead)
    print(body)
    if not args.no_record:
        report.record("train", body)
    return 0


def render(rows: list[dict[str, Any]], overhead: dict[str, Any]) -> str:
    lines = [
        "## Training: fit time and memory (bench/train.py)",
        "",
        report.stamp(),
        f"A shop's whole fit (training/pipeline.py with config/training.toml), data already "
        f"read; synthetic shops of {VISITORS:,} visitors and {PRODUCTS:,} products "
        f"(bench/synthetic.py), and MovieLens-100K as one shop's views. Peak memory: the "
        f"process tree's proportional set size (PSS: shared pages counted once), Ray's workers "
        f"and object store included; 'driver peak RSS' is the fitting process alone. "
        f"'Ray Train workers' is what the config asked for and what each data-parallel step "
        f"used: below [ray] min_interactions / min_reranker_rows a step runs in the driver.",
        "",
        "| shop | interactions | Ray Train workers (Gram, XGBoost) | fit s "
        "| of which: Gram (Ray Train) | CF | co-purchase | re-ranker | peak GiB (PSS) "
        "| driver peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, used = r["phases"], r["ray_workers"]
        steps = ", ".join(str(used.get(step, "-")) for step in ("gram", "xgboost"))
        lines.append(
            f"| {r['size']} | {r['interactions']:,} | {r['workers']} asked; used {steps} | "
            f"{r['fit_s']:.1f} | {p.get('ray_train_gram', 0):.1f} | {p.get('cf', 0):.1f} | "
            f"{p.get('co_purchase', 0):.1f} | {p.get('reranker', 0):.1f} | {r['peak_gib']:.2f} "
            f"| {r['maxrss_mib'] / 1024:.2f} |"
        )
    lines.append("")
    for r in rows:
        if r["size"] == "10m":
            ok = r["fit_s"] < TARGET_SECONDS and r["peak_gib"] < TARGET_GIB
            lines.append(
                f"- Target (10M interactions fit, candidates + re-ranker, under "
                f"{TARGET_SECONDS / 60:.0f} min within {TARGET_GIB:.0f} GiB) with "
                f"{r['workers'] or 'no'} Ray Train workers: {'met' if ok else 'NOT met'} "
                f"({r['fit_s'] / 60:.1f} min, {r['peak_gib']:.2f} GiB)."
            )
    lines += [
        "",
        "Ray Train's overhead, one worker against a plain call of the same code (big input: "
        "the 10M shop's interactions for the Gram, "
        f"{overhead['xgboost_rows']:,} re-ranker rows for XGBoost); medians of "
        f"{OVERHEAD_ROUNDS} interleaved rounds, every round's seconds in the last column:",
        "",
    ]
    lines += [
        "| step | tiny input: plain s | tiny: Ray Train s | big input: plain s "
        "| big: Ray Train s | fixed s | compute ratio | rounds: big plain / big Ray Train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for step in ("gram", "xgboost"):
        runs = overhead[step]
        o = {name: float(np.median(seconds)) for name, seconds in runs.items()}
        fixed = o["tiny_ray_s"] - o["tiny_plain_s"]
        ratio = (o["ray_s"] - fixed) / o["plain_s"]
        rounds = ", ".join(
            f"{p:.1f}/{r:.1f}" for p, r in zip(runs["plain_s"], runs["ray_s"], strict=True)
        )
        lines.append(
            f"| {step} | {o['tiny_plain_s']:.2f} | {o['tiny_ray_s']:.2f} | {o['plain_s']:.2f} | "
            f"{o['ray_s']:.2f} | {fixed:.1f} | {ratio:.2f}x | {rounds} |"
        )
        verdicts.append(fixed < TARGET_FIXED_S and ratio < TARGET_RATIO)
    lines += [
        "",
        f"- Target (Ray Train overhead under {TARGET_FIXED_S:.0f} s fixed and under "
        f"{TARGET_RATIO}x on the compute): {'met' if all(verdicts) else 'NOT met'}. "
        f"ray.init itself: {overhead['ray_init_s']:.1f} s, not counted.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
