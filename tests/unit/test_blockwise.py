"""Big-shop paths that work a block at a time (neighbour tables, item-kNN, label encoding)
give exactly what the one-block computation gives."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
from scipy import sparse

from deployments.ranking import cooccurrence
from deployments.ranking.cooccurrence import NeighbourTable, row_blocks
from training.interactions import Interactions
from training.models.item_knn import ItemKNN, ItemKNNConfig


def _random_scores(seed: int, n: int = 60) -> sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    m = sparse.random(n, n, density=0.3, random_state=seed, format="csr")
    m.data = np.round(rng.random(len(m.data)) * 4) / 4 - 0.25  # ties and non-positives
    return m


def _tables_equal(a: NeighbourTable, b: NeighbourTable) -> None:
    for name in ("indptr", "neighbours", "scores", "support"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_row_blocks_cover_every_row_once_within_the_budget() -> None:
    indptr = np.array([0, 3, 3, 10, 11, 11, 20])
    blocks = row_blocks(indptr, 4)
    assert blocks[0][0] == 0 and blocks[-1][1] == 6
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    for lo, hi in blocks:  # within budget unless one row alone exceeds it
        assert indptr[hi] - indptr[lo] <= 4 or hi - lo == 1


@pytest.mark.parametrize("block", [1, 7, 50])
def test_neighbour_table_in_blocks_equals_one_block(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    scores = _random_scores(1)
    support = scores.copy()
    support.data = np.arange(len(support.data)) % 3 + 1.0
    items = np.array([f"p{i:02d}" for i in range(scores.shape[0])])
    whole = NeighbourTable.from_scores("x", items, scores, 5, support=support)
    monkeypatch.setattr(cooccurrence, "BLOCK_ENTRIES", block)
    _tables_equal(NeighbourTable.from_scores("x", items, scores, 5, support=support), whole)


def test_item_knn_in_blocks_equals_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    users = [f"u{u}" for u in rng.integers(0, 80, 900)]
    items = [f"p{i}" for i in rng.integers(0, 40, 900)]
    data = Interactions.from_triples(users, items, rng.random(900) + 0.5)
    config = ItemKNNConfig(neighbours=5, shrink=2.0, alpha=0.3, pop_exponent=0.2)
    whole = ItemKNN(config)
    whole.fit(data)
    from training.models import item_knn

    monkeypatch.setattr(item_knn, "BLOCK_ENTRIES", 13)
    monkeypatch.setattr(cooccurrence, "BLOCK_ENTRIES", 13)
    blocked = ItemKNN(config)
    blocked.fit(data)
    assert (whole.similarity != blocked.similarity).nnz == 0
    assert whole.similarity.nnz > 0


def test_arrow_labels_encode_like_numpy() -> None:
    users = ["b", "a", "é", "b", "c", "a"]
    items = ["x", "y", "x", "z", "y", "y"]
    weights = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    from_numpy = Interactions.from_triples(users, items, weights, item_vocabulary=["y", "x"])
    from_arrow = Interactions.from_triples(
        pa.chunked_array([pa.array(users[:3]), pa.array(users[3:])]).dictionary_encode(),
        pa.array(items),
        weights,
        item_vocabulary=["y", "x"],
    )
    assert list(from_arrow.users) == ["a", "b", "c", "é"] == list(from_numpy.users)
    assert list(from_arrow.items) == ["x", "y"]
    assert (from_arrow.matrix != from_numpy.matrix).nnz == 0
    assert from_arrow.matrix.sum() == pytest.approx(1.0 + 2.0 + 3.0 + 5.0 + 6.0)  # z dropped
