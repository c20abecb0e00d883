"""Hyperparameter choice on validation only, then the test figures, for several seeds.

For one seed and one candidate: fit every configuration of the grid on train, rank for the
validation split and keep the configuration with the best mean validation NDCG@10. That fitted
model is the chosen configuration fitted on train (refitting it would give the same model), and
it is evaluated once on test. Over seeds, each seed has its own split and its own choice.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import scipy.sparse as sp

from bench.evaluation import Candidate, Evaluation, Recommender, Split, evaluate, random_split

SELECTION_METRIC = "ndcg@10"


@dataclass(frozen=True)
class SeedResult:
    seed: int
    params: dict[str, float | int | str]
    valid: float  # mean validation SELECTION_METRIC of the chosen configuration
    test: Evaluation
    fit_seconds: float  # the chosen configuration's fit
    tune_seconds: float  # the whole grid: fits and validation rankings


@dataclass(frozen=True)
class ModelResult:
    name: str
    runs: tuple[SeedResult, ...]

    def test_means(self, metric: str) -> list[float]:
        return [run.test.mean(metric) for run in self.runs]

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.test_means(metric))

    def std(self, metric: str) -> float:
        values = self.test_means(metric)
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def valid_mean(self) -> float:
        return statistics.fmean(run.valid for run in self.runs)


def tune(candidate: Candidate, split: Split) -> SeedResult:
    started = time.perf_counter()
    best: tuple[float, dict[str, float | int | str], Recommender, float] | None = None
    for params in candidate.configurations():
        model = candidate.factory(params, split.seed)
        fit_started = time.perf_counter()
        model.fit(split.train)
        fit_seconds = time.perf_counter() - fit_started
        valid = evaluate(model, split.known("valid"), split.relevant("valid"))
        value = valid.mean(SELECTION_METRIC)
        if best is None or value > best[0]:
            best = (value, params, model, fit_seconds)
    if best is None:
        raise ValueError(f"{candidate.name}: empty hyperparameter grid")
    value, params, model, fit_seconds = best
    tune_seconds = time.perf_counter() - started
    test = evaluate(model, split.known("test"), split.relevant("test"))
    return SeedResult(split.seed, params, value, test, fit_seconds, tune_seconds)


def run(
    candidates: Sequence[Candidate],
    matrix: sp.csr_matrix,
    seeds: Sequence[int],
    log: Callable[[str], None] = lambda _: None,
) -> list[ModelResult]:
    """Every candidate tuned and tested on the same split for each seed."""
    runs: dict[str, list[SeedResult]] = {c.name: [] for c in candidates}
    if len(runs) != len(candidates):
        raise ValueError("candidate names must be unique")
    for seed in seeds:
        split = random_split(matrix, seed)
        for candidate in candidates:
            result = tune(candidate, split)
            runs[candidate.name].append(result)
            log(
                f"seed {seed} {candidate.name}: {result.params} valid {SELECTION_METRIC} "
                f"{result.valid:.4f}, test {result.test.mean(SELECTION_METRIC):.4f} "
                f"({result.tune_seconds:.1f} s)"
            )
    return [ModelResult(name, tuple(results)) for name, results in runs.items()]
