"""Ray Train: the data-parallel part of a fit.

Gram models need XᵀX and column sums over all users. Those are sums over rows, so each Ray
Train worker computes them for a disjoint shard of users and the driver adds the shards up
(no numeric all-reduce is needed, which Ray offers only through torch). Each worker writes its
statistics as Arrow tensor files straight into the run's directory on the storage filesystem
(the configured storage_path, local or a bucket; else a temporary directory) and reports that
directory as its checkpoint without an upload: at 10M interactions a shard's Gram is ~0.8 GB,
and writing it to a local directory, then copying it into storage and reading it from a zip
archive cost ~3 s of Ray Train's ~4 s on top of the compute. The driver reads one set of
files per rank from there.

Shards are assigned by row number modulo the number of workers, put in the object store once
by the driver and fetched by each worker: a worker reads only its own shard.

`num_workers = 0` runs the loop in the driver (Ray Train's local mode): the same code path,
without worker processes, for small shops and unit tests.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import ray
import ray.train
from ray.train import Checkpoint, CheckpointUploadMode, RunConfig, ScalingConfig
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
from scipy import sparse

from training.config import RayConfig
from training.models.base import Gram

STATISTICS_DIR = "statistics"
POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"


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
    with run_storage(config) as storage, controller_polling(config):
        run_name = f"{name}-{time.time_ns()}"
        # Inside the run's own directory: only there does Ray Train accept a checkpoint it
        # need not upload.
        output = f"{storage.rstrip('/')}/{run_name}/{STATISTICS_DIR}"
        loop_config = {
            "output": output,
            "tasks": [
                (t.name, t.statistics, [put(s) for s in shards(t.matrix, world)]) for t in tasks
            ],
        }
        trainer = DataParallelTrainer(
            _gram_loop,
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(
                num_workers=config.num_workers,
                resources_per_worker={"CPU": config.cpus_per_worker},
            ),
            run_config=RunConfig(name=run_name, storage_path=storage),
        )
        started = time.perf_counter()
        result = trainer.fit()
        seconds = time.perf_counter() - started
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train run {name} reported no statistics")
        fs, directory = pafs.FileSystem.from_uri(output)
        grams = {
            task.name: functools.reduce(
                Gram.merge,
                (Gram.read(fs, f"{directory}/{task.name}.rank{r}") for r in range(world)),
            )
            for task in tasks
        }
    return TrainRun(grams, seconds)


@contextlib.contextmanager
def controller_polling(config: RayConfig) -> Iterator[None]:
    """Ray Train's controller checks on its workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s
    by default), and each step of a run waits for a check: a tiny run took 12.0-13.2 s here
    with Ray's default and 7.7-8.7 s at 0.2 s. The trainer hands the driver's variable to its
    controller when fit() starts; an operator's own setting of it wins."""
    if POLL_ENV in os.environ:
        yield
        return
    os.environ[POLL_ENV] = str(config.poll_interval_s)
    try:
        yield
    finally:
        os.environ.pop(POLL_ENV, None)


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
    fs, directory = pafs.FileSystem.from_uri(config["output"])
    fs.create_dir(directory)
    rows = 0
    for name, statistics, refs in config["tasks"]:
        shard = refs[rank]
        gram = statistics(ray.get(shard) if isinstance(shard, ray.ObjectRef) else shard)
        gram.write(fs, f"{directory}/{name}.rank{rank}")
        rows += gram.rows
    # Every rank reports the same directory; each wrote only its own files there.
    ray.train.report(
        {"rows": rows},
        checkpoint=Checkpoint(directory, filesystem=fs),
        checkpoint_upload_mode=CheckpointUploadMode.NO_UPLOAD,
    )


def ensure_ray() -> None:
    """Connect to the cluster a job was submitted to (RAY_ADDRESS), or start a local one."""
    if not ray.is_initialized():
        ray.init(logging_level=logging.WARNING, log_to_driver=False)
