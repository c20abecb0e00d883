"""The k largest entries of each row of a wide dense score matrix.

Evaluating a shop's models and building their neighbour tables both pick a few dozen columns
out of rows as wide as the catalog (50,000 products in bench/train). np.argpartition costs
3-16 ns per entry on these machines, depending on the CPU's SIMD support; at 1M interactions
it was half of the fit.

Most of each row cannot be in its top k, and that is cheap to see. Split the row into B >= k
blocks and take each block's maximum (one pass at memory speed). The k-th largest maximum t
is a threshold that at least k entries reach, one in each of the k blocks whose maximum
reaches it, and no other block holds an entry >= t. So the top k are among those k blocks'
entries >= t: a gather of k/B of the row, sorted. That is the first path.

Rows where many blocks' maxima tie at t (sparse scores, where t is often 0) take the second:
the entries >= t, or > t, are the candidates if they are few, and where fewer than k are
above t the answer is they and the first entries equal to t. Rows with NaN, or where t is not
finite, or with too many candidates, are partitioned whole.
"""

from __future__ import annotations

import numpy as np

# Below this width, or when k is a large share of it, partitioning whole rows is as fast.
_MIN_WIDTH = 4096
# Blocks per k: the first path gathers 1/_GATHER_BLOCKS_PER_K of a row, the second screens
# with k * _BLOCKS_PER_K block maxima.
_GATHER_BLOCKS_PER_K = 8
_BLOCKS_PER_K = 4
# A row with more candidates than this many times k is partitioned whole.
_MAX_CANDIDATES_PER_K = 16
# Rows per step: the temporaries (a boolean mask, the candidates) stay a few MB.
_CHUNK_ELEMENTS = 1 << 22


def largest(values: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k largest values (k clipped to the row width), in column
    order. Ties are broken toward the lower column, so the answer is exactly the first k of a
    stable sort by value, descending. NaN ranks as -inf."""
    if values.ndim != 2:
        raise ValueError(f"expected a 2-d array, not {values.ndim}-d")
    m, n = values.shape
    k = min(k, n)
    if k < 1:
        return np.zeros((m, 0), dtype=np.intp)
    if n < _MIN_WIDTH or k * _BLOCKS_PER_K * 8 > n:
        return _whole(values, k)
    out = np.empty((m, k), dtype=np.intp)
    step = max(1, _CHUNK_ELEMENTS // n)
    for lo in range(0, m, step):
        chunk = values[lo : lo + step]
        answered = _gathered(chunk, k, out[lo : lo + step])
        rest = np.flatnonzero(~answered)
        if len(rest):
            out[lo + rest] = _screened(chunk[rest], k)
    return out


def _gathered(values: np.ndarray, k: int, out: np.ndarray) -> np.ndarray:
    """The first path: writes the rows it can answer into `out` and says which those are."""
    m, n = values.shape
    blocks = k * _GATHER_BLOCKS_PER_K
    width = n // blocks
    whole_blocks = values[:, : blocks * width].reshape(m, blocks, width)
    block_max = whole_blocks.max(axis=2)  # NaN anywhere in a block makes its maximum NaN
    tail = values[:, blocks * width :]
    maxima = block_max if tail.shape[1] == 0 else np.column_stack([block_max, tail.max(axis=1)])
    t = np.partition(maxima, maxima.shape[1] - k, axis=1)[:, -k]
    hit = block_max >= t[:, None]
    answered: np.ndarray = (
        np.isfinite(t)
        & ~np.isnan(maxima).any(axis=1)
        & (np.count_nonzero(hit, axis=1) <= k * _GATHER_BLOCKS_PER_K // 2)
    )
    rows = np.flatnonzero(answered)
    if len(rows) == 0:
        return answered
    row, block = np.nonzero(hit[rows])
    row = rows[row]
    gathered = whole_blocks[row, block]  # (blocks hit, width)
    at, offset = np.nonzero(gathered >= t[row, None])
    cand_row, cand_col = row[at], block[at] * width + offset
    cand_value = gathered[at, offset]
    if tail.shape[1]:
        t_row, t_col = np.nonzero(tail[rows] >= t[rows, None])
        cand_row = np.concatenate([cand_row, rows[t_row]])
        cand_col = np.concatenate([cand_col, blocks * width + t_col])
        cand_value = np.concatenate([cand_value, tail[rows[t_row], t_col]])
    # Each answered row has at least k candidates; its first k by value, then column.
    order = np.lexsort((cand_col, -cand_value.astype(np.float64), cand_row))
    first = np.searchsorted(cand_row[order], rows)
    out[rows] = np.sort(cand_col[order][first[:, None] + np.arange(k)], axis=1)
    return answered


def _first_k(values: np.ndarray, columns: np.ndarray, k: int) -> np.ndarray:
    """Of each row's entries (columns ascending along the row; -inf padding at the end), the
    columns of the first k by value descending, then column ascending."""
    kth = np.partition(values, values.shape[1] - k, axis=1)[:, -k, None]
    take = _fill(values > kth, values == kth, k)
    picked: np.ndarray = np.broadcast_to(columns, values.shape)[take].reshape(-1, k)
    return picked


def _fill(above: np.ndarray, tied: np.ndarray, k: int) -> np.ndarray:
    """Where each row's k-th value is known: every entry above it, and as many of those equal
    to it as fill k, lowest column first (exactly k per row)."""
    room = k - above.sum(axis=1, keepdims=True)
    taken: np.ndarray = above | (tied & (np.cumsum(tied, axis=1) <= room))
    return taken


def _ranked(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind != "f" or not np.isnan(values).any():
        return values
    return np.where(np.isnan(values), -np.inf, values)


def _whole(values: np.ndarray, k: int) -> np.ndarray:
    return _first_k(_ranked(values), np.arange(values.shape[1]), k)


def _screened(values: np.ndarray, k: int) -> np.ndarray:
    m, n = values.shape
    blocks = k * _BLOCKS_PER_K
    width = n // blocks
    block_max = values[:, : blocks * width].reshape(m, blocks, width).max(axis=2)
    if blocks * width < n:  # the remainder is one more block
        block_max = np.column_stack([block_max, values[:, blocks * width :].max(axis=1)])
    t = np.partition(block_max, block_max.shape[1] - k, axis=1)[:, -k, None]
    at_least = values >= t  # False for NaN, and everywhere if t is NaN
    above = values > t
    n_at_least, n_above = at_least.sum(axis=1), above.sum(axis=1)
    cap = k * _MAX_CANDIDATES_PER_K
    # Candidates: the entries >= t if they are few; else those > t if there are k of them and
    # few (sparse scores: t is often 0, shared by most of the row).
    by_at_least = (n_at_least >= k) & (n_at_least <= cap)
    by_above = ~by_at_least & (n_above >= k) & (n_above <= cap)
    # Fewer than k entries above t but k at or above: the k-th value is t itself, so the answer
    # is every entry above it and the first of those equal to it.
    filled = ~by_at_least & (n_above < k) & (n_at_least >= k)
    out = np.empty((m, k), dtype=np.intp)
    whole = np.flatnonzero(~(by_at_least | by_above | filled))
    if len(whole):
        out[whole] = _whole(values[whole], k)
    if filled.any():
        rows = np.flatnonzero(filled)
        take = _fill(above[rows], at_least[rows] & ~above[rows], k)
        out[rows] = np.nonzero(take)[1].reshape(-1, k)
    rows = np.flatnonzero(by_at_least | by_above)
    if len(rows):
        mask = np.where(by_at_least[rows, None], at_least[rows], above[rows])
        per_row = mask.sum(axis=1)
        row, col = np.nonzero(mask)  # row-major: each row's candidates together, ascending
        local = np.repeat(np.arange(len(rows)), per_row)
        slot = np.arange(len(col)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
        wide = int(per_row.max())
        candidates = np.zeros((len(rows), wide), dtype=np.intp)
        candidates[local, slot] = col
        scores = np.full((len(rows), wide), -np.inf, dtype=np.float64)
        scores[local, slot] = values[rows[row], col]
        # The -inf padding is never among the first k: a row's candidates include k above -inf
        # (t is finite where the entries >= t are few, and those > t are all above -inf).
        out[rows] = _first_k(scores, candidates, k)
    return out
