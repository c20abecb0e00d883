"""Ray Train: the data-parallel part of a fit.

Gram models need XᵀX and column sums over all users. Those are sums over rows, so each Ray
Train worker computes them for a disjoint shard of users and the driver adds the shards up
(no numeric all-reduce is needed, which Ray offers only through torch). Each worker writes its
statistics into its checkpoint directory; Train V2 merges the workers' checkpoint files into
one directory, where the driver finds one file per rank.

Shards are assigned by row number modulo the number of workers, put in the object store once
by the driver and fetched by each worker: a worker reads only its own shard.

`num_workers = 0` runs the loop in the driver (Ray Train's local mode): the same code path,
without worker processes, for small shops and unit tests.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
import ray.train
from ray.train import Checkpoint, RunConfig, ScalingConfig
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
from scipy import sparse

from training.config import RayConfig
from training.models.base import Gram

GRAM_FILE = "{task}.rank{rank}.npz"
GRAM_DIR_PREFIX = "nova-gram-"


@dataclass(frozen=True)
class GramTask:
    """One set of statistics to accumulate: a model's statistics() over a matrix's rows."""

    name: str
    statistics: Callable[[sparse.csr_matrix], Gram]  # picklable (a model's bound method is)
    matrix: sparse.csr_matrix


@dataclass(frozen=True)
class TrainRun:
    grams: dict[str, Gram]
    seconds: float  # wall time of trainer.fit()


def shards(matrix: sparse.csr_matrix, n: int) -> list[sparse.csr_matrix]:
    rows = np.arange(matrix.shape[0])
    return [matrix[rows % n == r] for r in range(n)]


def gram_statistics(tasks: Sequence[GramTask], config: RayConfig, *, name: str) -> TrainRun:
    """Every task's statistics, merged over user shards computed by Ray Train workers. All
    tasks share one run: starting a worker group costs seconds, a shard's Gram milliseconds
    to minutes."""
    world = max(config.num_workers, 1)
    if config.num_workers > 0:
        ensure_ray()
    # Local mode runs the loop in this process: the shards need no trip through the object
    # store (nor a Ray cluster at all).
    put = ray.put if config.num_workers > 0 else (lambda value: value)
    loop_config = {
        "tasks": [(t.name, t.statistics, [put(s) for s in shards(t.matrix, world)]) for t in tasks]
    }
    with run_storage(config) as storage:
        trainer = DataParallelTrainer(
            _gram_loop,
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(
                num_workers=config.num_workers,
                resources_per_worker={"CPU": config.cpus_per_worker},
            ),
            run_config=RunConfig(name=f"{name}-{time.time_ns()}", storage_path=storage),
        )
        started = time.perf_counter()
        result = trainer.fit()
        seconds = time.perf_counter() - started
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train run {name} reported no statistics")
        grams = {}
        try:
            with result.checkpoint.as_directory() as directory:
                for task in tasks:
                    parts = [
                        Gram.from_npz(Path(directory) / GRAM_FILE.format(task=task.name, rank=r))
                        for r in range(world)
                    ]
                    grams[task.name] = functools.reduce(Gram.merge, parts)
        finally:
            # Local mode reports the loop's own directory (nothing is uploaded): ours to remove.
            if Path(result.checkpoint.path).name.startswith(GRAM_DIR_PREFIX):
                shutil.rmtree(result.checkpoint.path, ignore_errors=True)
    return TrainRun(grams, seconds)


@contextlib.contextmanager
def run_storage(config: RayConfig) -> Iterator[str]:
    """Where a Ray Train run keeps its checkpoints: the configured storage_path (kept, for
    whoever set it), else a temporary directory, removed once the run's results are read
    (every fit used to leave one behind)."""
    if config.storage_path:
        yield config.storage_path
        return
    directory = tempfile.mkdtemp(prefix="nova-train-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _gram_loop(config: dict[str, Any]) -> None:
    rank = ray.train.get_context().get_world_rank()
    # Not a TemporaryDirectory: in local mode the reported checkpoint is this directory itself
    # (nothing is uploaded), so it must outlive the loop; Train deletes it after an upload.
    directory = tempfile.mkdtemp(prefix=GRAM_DIR_PREFIX)
    rows = 0
    for name, statistics, refs in config["tasks"]:
        shard = refs[rank]
        gram = statistics(ray.get(shard) if isinstance(shard, ray.ObjectRef) else shard)
        gram.to_npz(Path(directory) / GRAM_FILE.format(task=name, rank=rank))
        rows += gram.rows
    ray.train.report(
        {"rows": rows},
        checkpoint=Checkpoint.from_directory(directory),
        delete_local_checkpoint_after_upload=True,
    )


def ensure_ray() -> None:
    """Connect to the cluster a job was submitted to (RAY_ADDRESS), or start a local one."""
    if not ray.is_initialized():
        ray.init(logging_level=logging.WARNING, log_to_driver=False)
