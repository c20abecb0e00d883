"""bench/quality: offline recommendation quality on MovieLens-100K, Nova against its peers.

    python -m bench.quality [--seeds 5] [--no-record]

Protocol (bench/evaluation.py): every rating is a positive; per user a random 80/10/10 split
per seed; full ranking excluding known items; hyperparameters chosen on validation NDCG@10
only. Peers (bench/peers.py) and Nova's pipelines (bench/nova.py) run in the same process on
the same splits. The dataset comes from RecBole's wheel (bench/movielens.py). The table is
printed and, unless --no-record, written to docs/benchmarks.md with machine, date and commit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from importlib import metadata

from bench import comparison, movielens, report
from bench.evaluation import KS, interaction_matrix
from bench.nova import nova_candidates
from bench.peers import PEERS
from bench.tuning import ModelResult, run

# RecBole's quick start, BPR on ML-100K under this protocol (test split).
RECBOLE_BPR = {"ndcg@10": 0.2920, "recall@10": 0.2523, "mrr@10": 0.4855, "hit@10": 0.7953}
COLUMNS = ("ndcg", "recall", "mrr", "hit", "precision")
HEADINGS = {"ndcg": "NDCG", "recall": "Recall", "mrr": "MRR", "hit": "Hit", "precision": "P"}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _value(value: float | int | str) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def chosen(result: ModelResult) -> str:
    """The configurations chosen on validation, with how many seeds chose each."""
    counts = Counter(
        ", ".join(f"{k}={_value(v)}" for k, v in seed.params.items()) or "-" for seed in result.runs
    )
    return "; ".join(f"{config} ({n}/{len(result.runs)})" for config, n in counts.most_common())


def _heading(metric: str) -> str:
    name, k = metric.split("@")
    return f"{HEADINGS[name]}@{k}"


def _cell(result: ModelResult, metric: str) -> str:
    return f"{result.mean(metric):.4f} ± {result.std(metric):.4f}"


def table(results: Sequence[ModelResult], k: int, with_params: bool) -> list[str]:
    metric_heads = [_heading(f"{c}@{k}") for c in COLUMNS]
    heads = ["model", *(["chosen on validation (seeds)"] if with_params else []), *metric_heads]
    heads += ["valid NDCG@10", "fit s", "tuning s/seed"] if with_params else []
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for result in results:
        cells = [result.name, *([chosen(result)] if with_params else [])]
        cells += [_cell(result, f"{c}@{k}") for c in COLUMNS]
        if with_params:
            fit = statistics.fmean(r.fit_seconds for r in result.runs)
            tuning = statistics.fmean(r.tune_seconds for r in result.runs)
            cells += [f"{result.valid_mean():.4f}", f"{fit:.2f}", f"{tuning:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(
    results: Sequence[ModelResult],
    nova_names: set[str],
    seeds: Sequence[int],
    seconds: float,
    data: movielens.Interactions,
    stamp: str,
) -> tuple[str, bool]:
    nova = [r for r in results if r.name in nova_names]
    peers = [r for r in results if r.name not in nova_names]
    result = comparison.compare(comparison.best(nova), comparison.best(peers)) if nova else None
    sane, sanity_line = comparison.sanity(peers)
    versions = ", ".join(f"{p} {_version(p)}" for p in ("numpy", "scipy", "implicit"))
    recbole = ", ".join(f"{_heading(name)} {value:.4f}" for name, value in RECBOLE_BPR.items())
    lines = [
        "## Quality: MovieLens-100K, Nova against its peers",
        "",
        stamp,
        f"{versions}. {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
        f"{seconds:.0f} s for the whole run.",
        "",
        f"MovieLens-100K from the recbole==1.2.1 wheel: {len(data.users)} ratings, "
        f"{data.n_users} users, {data.n_items} items, every rating a positive. Per user a "
        "random 80/10/10 train/validation/test split per seed (RecBole's RS split); full "
        "ranking over all items, excluding the user's train items (and, for test, validation "
        "items, as RecBole does); metrics averaged over users with a relevant item. Each "
        "model's grid is searched on validation NDCG@10 per seed and the chosen model is "
        "evaluated once on test. Test figures: mean ± standard deviation over seeds; 'fit s' is "
        "the chosen configuration's fit, 'tuning s/seed' the whole grid with its validation "
        "rankings, on a machine possibly shared with other jobs. Nova's re-ranker learns from "
        "held-out slices of each user's training items (bench/nova.py) and reads the items' "
        "genres (as collections) and release years (as creation dates) from ml-100k.item, as "
        "it reads a shop's catalog; Nova ALS may learn from the same genres and from the "
        "titles' words as catalog groups (catalog_weight > 0: each genre, and each word of "
        "two or more titles, a pseudo-user of its items), as a shop's fit takes collections "
        "and title words; the peers' libraries have no input for them. No model learns from "
        "validation or test items.",
        "",
        *table(results, KS[0], with_params=True),
        "",
        *table(results, KS[1], with_params=False),
        "",
        f"For reference, RecBole's published BPR under this protocol (test): {recbole}.",
        "",
        sanity_line,
        "",
        *comparison.target_lines(result),
    ]
    return "\n".join(lines), sane


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    # Five seeds, not the protocol's minimum of three: with three, one seed's paired test could
    # not tell Nova ALS from implicit's (p=0.39) and the seeds' spread was as large as the
    # 2% margin the target judges.
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    seeds = list(range(args.seeds))

    started = time.perf_counter()
    data = movielens.load()
    matrix = interaction_matrix(data.users, data.items, data.n_users, data.n_items)
    nova = nova_candidates(movielens.load_catalog(data.item_tokens))
    candidates = [*PEERS, *nova]
    results = run(candidates, matrix, seeds, log=lambda line: print(line, file=sys.stderr))
    seconds = time.perf_counter() - started

    nova_names = {candidate.name for candidate in nova}
    text, sane = render(results, nova_names, seeds, seconds, data, report.stamp())
    print(text)
    if not sane:
        print("not recorded: the evaluation failed its sanity check", file=sys.stderr)
        return 1
    if not args.no_record:
        report.record("quality", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
