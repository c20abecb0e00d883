"""Nova against the peers: the best of each, a paired test across users, and the targets.

"Best" is chosen by mean validation NDCG@10 over seeds, never by test. The paired test is
Wilcoxon's signed-rank test (two-sided) on the per-user test NDCG@10 differences, per seed and
pooled over seeds. Pooling treats each (seed, user) pair as a separate observation although the
same users recur across seeds, so the pooled p-value is optimistic; the per-seed ones are not.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench import peers
from bench.tuning import ModelResult

METRIC = "ndcg@10"
TARGET_NDCG = 0.29  # RecBole's published BPR under the same protocol: 0.2920
TARGET_RECALL = 0.25  # and Recall@10 0.2523
TARGET_GAIN = 0.02  # relative NDCG@10 over the best peer of the same run
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class PairedTest:
    label: str  # "seed 0", ..., "pooled"
    users: int
    mean_difference: float  # Nova minus peer, per-user NDCG@10
    p_value: float


@dataclass(frozen=True)
class Comparison:
    nova: ModelResult
    peer: ModelResult
    relative_gain: float  # mean-over-seeds NDCG@10, Nova over peer, minus 1
    tests: tuple[PairedTest, ...]

    @property
    def pooled(self) -> PairedTest:
        return self.tests[-1]


def best(results: Sequence[ModelResult]) -> ModelResult:
    """The result with the highest mean validation NDCG@10."""
    if not results:
        raise ValueError("no results to choose from")
    return max(results, key=lambda result: result.valid_mean())


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided signed-rank p-value; 1.0 when no user's value differs at all."""
    if not np.any(differences):
        return 1.0
    return float(stats.wilcoxon(differences).pvalue)


def _test(label: str, differences: np.ndarray) -> PairedTest:
    return PairedTest(label, len(differences), float(differences.mean()), wilcoxon_p(differences))


def compare(nova: ModelResult, peer: ModelResult) -> Comparison:
    per_seed: list[np.ndarray] = []
    tests: list[PairedTest] = []
    for ours, theirs in zip(nova.runs, peer.runs, strict=True):
        if ours.seed != theirs.seed or not np.array_equal(ours.test.queries, theirs.test.queries):
            raise ValueError(f"{nova.name} and {peer.name} were not evaluated on the same split")
        differences = ours.test.per_query[METRIC] - theirs.test.per_query[METRIC]
        per_seed.append(differences)
        tests.append(_test(f"seed {ours.seed}", differences))
    tests.append(_test("pooled", np.concatenate(per_seed)))
    gain = nova.mean(METRIC) / peer.mean(METRIC) - 1.0
    return Comparison(nova, peer, gain, tuple(tests))


def _floor(name: str, value: float, target: float) -> str:
    if value >= target:
        return f"{name} {value:.4f} >= {target}: met, by {value - target:+.4f}"
    return (
        f"{name} {value:.4f} < {target}: NOT met, short by {target - value:.4f} "
        f"({(target - value) / target:.1%})"
    )


def target_lines(comparison: Comparison | None) -> list[str]:
    """The targets, and for a registered Nova pipeline whether each is met and by how much."""
    targets = (
        f"Targets: Nova's best pipeline reaches NDCG@10 >= {TARGET_NDCG} and Recall@10 >= "
        f"{TARGET_RECALL}, and beats the best peer of the same run by >= {TARGET_GAIN:.0%} "
        f"relative NDCG@10 with a paired test across users (Wilcoxon, p < {SIGNIFICANCE})."
    )
    if comparison is None:
        return [targets, "No Nova pipeline registered (bench/nova.py): targets not measured."]
    nova, peer, gain = comparison.nova, comparison.peer, comparison.relative_gain
    pooled = comparison.pooled
    significant = pooled.p_value < SIGNIFICANCE and pooled.mean_difference > 0
    gain_met = gain >= TARGET_GAIN and significant
    per_seed = ", ".join(f"{t.label} p={t.p_value:.2g}" for t in comparison.tests[:-1])
    verdict = "met" if gain_met else "NOT met"
    if gain < TARGET_GAIN:
        verdict += f", short by {100 * (TARGET_GAIN - gain):.1f} percentage points"
    elif not significant:
        verdict += ", the difference is not significant"
    return [
        targets,
        f"- Best Nova pipeline (by validation): {nova.name}; best peer: {peer.name}.",
        f"- {_floor('NDCG@10', nova.mean(METRIC), TARGET_NDCG)}.",
        f"- {_floor('Recall@10', nova.mean('recall@10'), TARGET_RECALL)}.",
        f"- Relative NDCG@10 over {peer.name}: {gain:+.1%} (target +{TARGET_GAIN:.0%}): "
        f"{verdict}. Paired Wilcoxon on per-user NDCG@10: pooled over seeds "
        f"p={pooled.p_value:.2g} ({pooled.users} user-seeds, mean difference "
        f"{pooled.mean_difference:+.4f}); {per_seed}.",
    ]


def sanity(results: Sequence[ModelResult]) -> tuple[bool, str]:
    """Popularity < item-kNN < EASE and ALS on test NDCG@10, or the evaluation is broken."""
    by_name = {result.name: statistics.fmean(result.test_means(METRIC)) for result in results}
    needed = (peers.POPULARITY, peers.ITEM_KNN, peers.EASE_NAME, peers.ALS_NAME)
    if any(name not in by_name for name in needed):
        return True, "Sanity check skipped: not every peer ran."
    pop, knn, ease, als = (by_name[name] for name in needed)
    ok = pop < knn < min(ease, als)
    return ok, (
        f"Sanity (popularity < item-kNN < EASE, ALS on NDCG@10): "
        f"{pop:.4f} < {knn:.4f} < {ease:.4f}, {als:.4f}: {'ok' if ok else 'BROKEN'}."
    )
