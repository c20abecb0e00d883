"""The trained models a serving replica uses for one shop, loaded from the registry.

Kinds (training/pipeline.py): "cf" and "co_purchase" are neighbour tables that join the
statistics tables (a trained co_purchase table replaces the refresher's), "reranker" re-orders
the first candidates. A replica loads a kind again only when the registry serves a different
version of it; if loading fails it keeps what it had and says so in the log, and the next
change of the shop's "models" counter tries again.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from deployments.ranking.cooccurrence import NeighbourTable
from training.registry import Registry
from training.rerank import Reranker

log = logging.getLogger(__name__)

TABLE_KINDS = ("cf", "co_purchase")
NEIGHBOURS_FILE = "neighbours.npz"
KINDS = (*TABLE_KINDS, "reranker")
SERVING_THREADS = 1  # XGBoost threads per re-ranker prediction (_load says why)


@dataclass(frozen=True)
class ServingModels:
    versions: dict[str, int] = field(default_factory=dict)  # kind -> loaded version
    tables: dict[str, NeighbourTable] = field(default_factory=dict)
    reranker: Reranker | None = None


async def load(registry: Registry, shop_id: str, old: ServingModels) -> ServingModels:
    """The registry's serving versions, reusing what is already loaded; a kind that fails to
    load keeps its old version (or stays absent)."""
    wanted = {k: row for k, row in (await registry.serving(shop_id)).items() if k in KINDS}
    versions = dict(old.versions)
    tables = dict(old.tables)
    reranker = old.reranker
    for kind in KINDS:
        row = wanted.get(kind)
        if row is None:
            if kind in versions:  # nothing published any more (all rows gone): stop using it
                log.info("%s %s: v%d -> none", shop_id, kind, versions.pop(kind))
                tables.pop(kind, None)
                reranker = None if kind == "reranker" else reranker
            continue
        if versions.get(kind) == row.version:
            continue
        try:
            with tempfile.TemporaryDirectory(prefix="nova-model-") as tmp:
                directory = await registry.fetch(row, Path(tmp))
                loaded = await asyncio.to_thread(_load, row.kind, directory)
        except Exception as exc:  # any failure: keep serving what we had
            log.error(
                "%s %s: cannot load v%d (%s: %s); keeping %s",
                shop_id,
                kind,
                row.version,
                type(exc).__name__,
                exc,
                f"v{versions[kind]}" if kind in versions else "none",
            )
            continue
        log.info(
            "%s %s: %s -> v%d",
            shop_id,
            kind,
            f"v{versions[kind]}" if kind in versions else "none",
            row.version,
        )
        versions[kind] = row.version
        if isinstance(loaded, Reranker):
            reranker = loaded
        else:
            tables[kind] = loaded
    return ServingModels(versions, tables, reranker)


def _load(kind: str, directory: Path) -> NeighbourTable | Reranker:
    if kind == "reranker":
        # One thread: a request scores ~100 candidates, too few to split, and a second
        # OpenMP thread only burns CPU other requests need (300 trees, 100 rows, 2 cores: 431
        # against 266 µs of CPU per call). Ray already caps OpenMP at a replica's whole CPUs
        # (OMP_NUM_THREADS), so this matters for replicas given more than one CPU and for
        # the app under plain uvicorn.
        return Reranker.load(directory, threads=SERVING_THREADS)
    table = NeighbourTable.from_bytes((directory / NEIGHBOURS_FILE).read_bytes())
    # Named by its serving slot, whatever algorithm produced it.
    return replace(table, kind=kind)
