"""The shared pieces of the model contract: neighbour tables, Gram statistics, recommend()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pytest
from scipy import sparse

from deployments.ranking.cooccurrence import NeighbourTable
from training.models import base
from training.models.base import Gram, top_k_table
from training.models.popularity import Popularity

ITEMS = np.array(["a", "b", "c", "d"])


def test_dense_and_sparse_similarities_give_the_same_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(4, 4))
    expected = top_k_table("x", ITEMS, sparse.csr_matrix(dense), 2)
    monkeypatch.setattr(base, "_DENSE_CHUNK_ELEMENTS", 5)  # one row per block
    table = top_k_table("x", ITEMS, dense, 2)
    for i, item in enumerate(ITEMS):
        assert table.of(item) == expected.of(item)
        ranked = [j for j in np.argsort(-dense[i]) if j != i and dense[i, j] > 0]
        assert [n for n, _, _ in table.of(item)] == [str(ITEMS[j]) for j in ranked[:2]]


def test_ties_go_to_more_support_then_lower_index() -> None:
    scores = sparse.csr_matrix(np.array([[0, 1, 1, 1], [0] * 4, [0] * 4, [0] * 4], dtype=float))
    support = sparse.csr_matrix(np.array([[0, 2, 5, 2], [0] * 4, [0] * 4, [0] * 4], dtype=float))
    table = NeighbourTable.from_scores("x", ITEMS, scores, 2, support=support)
    assert [(n, k) for n, _, k in table.of("a")] == [("c", 5), ("b", 2)]


def test_support_must_line_up_with_scores() -> None:
    scores = sparse.csr_matrix(np.array([[0, 1, 0, 0]] + [[0] * 4] * 3, dtype=float))
    support = sparse.csr_matrix(np.array([[0, 0, 1, 0]] + [[0] * 4] * 3, dtype=float))
    with pytest.raises(ValueError, match="sparsity pattern"):
        NeighbourTable.from_scores("x", ITEMS, scores, 2, support=support)


def test_gram_counts_rows_with_a_positive_value_not_stored_entries(tmp_path: Path) -> None:
    matrix = sparse.csr_matrix(
        (np.array([1.0, 0.0, 2.0]), np.array([0, 1, 1]), np.array([0, 2, 3])), shape=(2, 2)
    )
    gram = Gram.of(matrix)
    np.testing.assert_array_equal(gram.counts, [1, 1])
    gram.write(pafs.LocalFileSystem(), str(tmp_path / "gram"))
    again = Gram.read(pafs.LocalFileSystem(), str(tmp_path / "gram"))
    np.testing.assert_array_equal(again.cooccurrence.toarray(), gram.cooccurrence.toarray())
    np.testing.assert_array_equal(again.totals, gram.totals)
    np.testing.assert_array_equal(again.counts, gram.counts)
    assert again.counts.dtype == np.int64
    # Writable, as np.load gave them: a fit may work on them in place.
    assert again.cooccurrence.data.flags.writeable and again.totals.flags.writeable
    assert again.rows == 2


def test_recommend_refuses_k_below_one() -> None:
    with pytest.raises(ValueError, match="k must be"):
        base.recommend(Popularity(), sparse.csr_matrix((1, 0)), 0)


def _top_k_rows_by_sorting(block: np.ndarray, top_k: int, first_row: int) -> np.ndarray:
    """The reference: diagonal and non-positive entries (NaN too) zeroed, each row stably
    sorted, the positive entries among its first top_k kept."""
    values = np.nan_to_num(block.astype(np.float64), nan=0.0)
    rows = np.arange(len(values))
    inside = first_row + rows < values.shape[1]
    values[rows[inside], first_row + rows[inside]] = 0.0
    values[values <= 0] = 0.0
    out = np.zeros_like(values)
    order = np.argsort(-values, axis=1, kind="stable")[:, :top_k]
    np.put_along_axis(out, order, np.take_along_axis(values, order, axis=1), axis=1)
    return out


@pytest.mark.parametrize("first_row", [0, 300, 9_995])
def test_top_k_rows_matches_a_stable_sort_of_each_row(first_row: int) -> None:
    rng = np.random.default_rng(first_row)
    block = rng.standard_normal((12, 10_000)).astype(np.float32)
    block[np.arange(12), (first_row + np.arange(12)) % 10_000] = 9.0  # the diagonal is best
    block[1] = np.round(block[1])  # ties
    block[2, ::7] = np.nan
    block[3] = -np.abs(block[3])  # nothing positive
    block[4] = np.where(rng.random(10_000) < 0.002, rng.random(10_000), 0.0)  # sparse
    for top_k in (1, 20, 100):
        got = base.top_k_rows(block, top_k, first_row)
        np.testing.assert_array_equal(
            got.toarray(), _top_k_rows_by_sorting(block, top_k, first_row)
        )
        assert got.nnz == np.count_nonzero(got.data)  # no explicit zeros


@pytest.mark.parametrize("density", [0.002, 0.3])
def test_sparse_similarities_cut_as_dense_blocks_give_from_scores_table(
    density: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dense enough blocks of a sparse similarity are cut to their top k as dense rows first;
    the table is the one from_scores gives the whole matrix (ties, negatives, the diagonal,
    duplicate entries)."""
    rng = np.random.default_rng(11)
    n = 600
    similarity = sparse.random(n, n, density=density, random_state=rng, format="coo")
    similarity.data = np.round(similarity.data * 8 - 2)  # ties and non-positive values
    duplicated = sparse.coo_matrix(
        (
            np.r_[similarity.data, similarity.data[:50]],
            (
                np.r_[similarity.row, similarity.row[:50]],
                np.r_[similarity.col, similarity.col[:50]],
            ),
        ),
        shape=(n, n),
    ).tocsr()
    duplicated.setdiag(9.0)
    items = np.array([f"p{i}" for i in range(n)])
    expected = NeighbourTable.from_scores("x", items, duplicated, 5)
    monkeypatch.setattr(base, "_PICK_CHUNK_ELEMENTS", 7 * n)  # several blocks
    cut = base._sparse_top_k(duplicated, 5)
    if density > 0.1:
        assert cut.nnz <= 5 * n  # the blocks were cut
    else:
        assert cut.nnz == duplicated.nnz  # left whole for from_scores
    table = top_k_table("x", items, duplicated, 5)
    for item in items:
        assert table.of(item) == expected.of(item)
