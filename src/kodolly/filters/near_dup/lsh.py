"""LSH banding for MinHash signatures: the band/row choice, band keys, and the index of kept rows' bands.

:func:`optimal_bands` picks ``b`` bands of ``r`` rows (``b * r <= num_perm``) for a Jaccard threshold
``t`` as datasketch's ``MinHashLSH`` does: the probability that two sets of similarity ``s`` share a
band is ``P(s) = 1 - (1 - s**r)**b``; the choice minimises ``w_fp * ∫_0^t P + w_fn * ∫_t^1 (1 - P)``,
the weighted false-positive and false-negative areas (here by the trapezoid rule on a fine grid).

:class:`BandIndex` holds, per band, the band keys of the kept rows and their kept numbers in numpy
arrays, as a few sorted runs (a log-structured merge: a batch adds one run, runs of similar size are
merged), so a lookup of a whole batch is a ``searchsorted`` per run and memory is 8 bytes a kept row a
band, with no Python object per row.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .shingles import mix64

GRID = 2001  # points of the trapezoid rule over [0, 1]
_PRIME = np.uint64(0x9E3779B97F4A7C15)
MERGE_RATIO = 3  # a run is merged into the one before it while that one is at most this many times larger


def optimal_bands(threshold: float, num_perm: int, weights: tuple[float, float]) -> tuple[int, int]:
    """``(bands, rows)`` minimising the weighted false-positive and false-negative areas."""
    w_fp, w_fn = weights
    s = np.linspace(0.0, 1.0, GRID)
    best: tuple[float, int, int] | None = None
    for b in range(1, num_perm + 1):
        r = np.arange(1, num_perm // b + 1)[:, None]
        p = 1.0 - (1.0 - s[None, :] ** r) ** b  # (rows choices, grid)
        below = s <= threshold
        fp = _trapezoid(np.where(below, p, 0.0), s, below)
        fn = _trapezoid(np.where(~below, 1.0 - p, 0.0), s, ~below)
        err = w_fp * fp + w_fn * fn
        i = int(np.argmin(err))
        if best is None or err[i] < best[0] - 1e-12:
            best = (float(err[i]), b, int(r[i, 0]))
    assert best is not None
    return best[1], best[2]


def _trapezoid(y: np.ndarray, s: np.ndarray, mask: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(mask)
    if len(idx) < 2:
        return np.zeros(y.shape[0])
    ys, xs = y[:, idx], s[idx]
    return ((ys[:, 1:] + ys[:, :-1]) * 0.5 * np.diff(xs)).sum(axis=1)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n, bands)`` uint32 keys: band ``j`` hashes signature values ``j*rows .. (j+1)*rows - 1``.

    32 bits: two different bands collide by chance once in ~4 billion lookups per kept row; a
    collision only makes a candidate, which the signature check then rejects."""
    n = len(signatures)
    values = signatures[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    h = np.broadcast_to(mix64(np.arange(1, bands + 1, dtype=np.uint64)), (n, bands)).copy()
    with np.errstate(over="ignore"):
        for j in range(rows):
            h ^= values[:, :, j]
            h *= _PRIME
    return (mix64(h) >> np.uint64(32)).astype(np.uint32)


class SortedBands:
    """A batch's band keys sorted within each band: ``keys[j]`` ascending and ``rows[j]`` the batch row
    of each (ties in row order). One sort serves the index lookup, the pairs within the batch and the
    insertion of the kept rows."""

    def __init__(self, keys: np.ndarray) -> None:
        m, bands = keys.shape
        comp = (keys.T.astype(np.uint64) << np.uint64(32)) | np.arange(m, dtype=np.uint64)
        comp.sort(axis=1)  # distinct values (the row is in the low bits): any sort is this order
        self.keys = (comp >> np.uint64(32)).astype(np.uint32)
        self.rows = (comp & np.uint64(0xFFFFFFFF)).astype(np.int64)
        self.count = m


class BandIndex:
    """Per band, the band keys of the kept rows and their kept numbers, as sorted runs."""

    def __init__(self, bands: int) -> None:
        self.runs: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(bands)]

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + r.nbytes for runs in self.runs for k, r in runs)

    def lookup(self, batch: SortedBands) -> tuple[np.ndarray, np.ndarray]:
        """Every ``(batch row, kept number)`` pair sharing at least one band key, each pair once,
        sorted by batch row then kept number."""
        found_q: list[np.ndarray] = []
        found_k: list[np.ndarray] = []
        for band, runs in enumerate(self.runs):
            col, order = batch.keys[band], batch.rows[band]
            for run_keys, run_rows in runs:
                lo = np.searchsorted(run_keys, col, "left")
                hit = np.flatnonzero(run_keys[np.minimum(lo, len(run_keys) - 1)] == col)
                if not len(hit):
                    continue
                lo = lo[hit]
                count = np.searchsorted(run_keys, col[hit], "right") - lo
                total = int(count.sum())
                before = np.cumsum(count) - count
                found_q.append(np.repeat(order[hit], count))
                found_k.append(run_rows[np.repeat(lo - before, count) + np.arange(total)])
        if not found_q:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return unique_pairs(np.concatenate(found_q), np.concatenate(found_k))

    def insert(self, batch: SortedBands, numbers: np.ndarray) -> None:
        """Add the batch rows with ``numbers[row] >= 0`` under those kept numbers (ascending in row order)."""
        if not (numbers >= 0).any():
            return
        for band, runs in enumerate(self.runs):
            row_numbers = numbers[batch.rows[band]]
            keep = row_numbers >= 0
            runs.append((batch.keys[band][keep], row_numbers[keep].astype(np.int32)))
            while len(runs) > 1 and len(runs[-2][0]) <= MERGE_RATIO * len(runs[-1][0]):
                new_keys, new_rows = runs.pop()
                runs[-1] = _merge(*runs[-1], new_keys, new_rows)


def _merge(k1: np.ndarray, r1: np.ndarray, k2: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs as one (equal keys: the older run's first), in linear time."""
    at = np.searchsorted(k1, k2, "right") + np.arange(len(k2))
    older = np.ones(len(k1) + len(k2), dtype=bool)
    older[at] = False
    keys = np.empty(len(older), dtype=k1.dtype)
    rows = np.empty(len(older), dtype=r1.dtype)
    keys[at], rows[at] = k2, r2
    keys[older], rows[older] = k1, r1
    return keys, rows


def pairs_within(batch: SortedBands) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(later, earlier)`` pair of rows of one batch that share at least one band key, each
    pair once, sorted by the later row then the earlier."""
    return pairs_sharing(zip(batch.keys, batch.rows))


def pairs_sharing(columns: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(later, earlier)`` pair of rows sharing a key in one of ``columns``, each pair once,
    sorted by the later row then the earlier. A column is ``(keys, rows)``: keys ascending, and the
    rows of equal keys in ascending order (as :class:`SortedBands` and :func:`sort_codes` give)."""
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    for s, order in columns:
        n = len(s)
        if n < 2:
            continue
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = s[1:] != s[:-1]
        if new_group.all():
            continue
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
        rank = np.arange(n) - group_start  # how many earlier rows share this row's key
        total = int(rank.sum())
        before = np.cumsum(rank) - rank
        found_i.append(np.repeat(order, rank))
        found_j.append(order[np.repeat(group_start - before, rank) + np.arange(total)])
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return unique_pairs(np.concatenate(found_i), np.concatenate(found_j))


def band_codes(keys: np.ndarray) -> np.ndarray:
    """``(n, bands)`` uint64 ``band << 32 | key``: one bucket name per (band, key), across bands."""
    return (np.arange(keys.shape[1], dtype=np.uint64) << np.uint64(32)) | keys.astype(np.uint64)


def bucket_of(codes: np.ndarray, n: int) -> np.ndarray:
    """The partition (0 .. n-1) of each ``(band, key)`` code: a hash, so a band's buckets spread."""
    return ((mix64(codes.copy()) >> np.uint64(32)) % np.uint64(n)).astype(np.int64)


def sort_codes(codes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, rows)`` (``rows`` ascending) sorted by code, then row (a column for :func:`pairs_sharing`):
    a stable sort by code keeps the rows of one code in order."""
    order = np.argsort(codes, kind="stable")
    return codes[order], rows[order]


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values of an ascending array (numpy's hash-based ``unique`` is slower on them)."""
    if not len(values):
        return values
    return values[np.r_[True, values[1:] != values[:-1]]]


def earliest_kept_partner(later: np.ndarray, earlier: np.ndarray, undecided: np.ndarray) -> np.ndarray:
    """The greedy pass in input order over checked pairs ``(later, earlier)`` (sorted by later, then
    earlier): per row, the earliest partner that is kept when the row's turn comes, or -1 (the row is
    kept). ``undecided``: rows still to decide (``False``: dropped already, never kept, never named).

    Needs only the pairs: the same pass over the pairs of a whole input, however they were found
    (e.g. per ``(band, key)`` bucket on other processes), gives the verdicts of the streaming filter."""
    partner = np.full(len(undecided), -1, dtype=np.int64)
    kept = undecided.copy()
    if not len(later):
        return partner
    starts = np.flatnonzero(np.r_[True, later[1:] != later[:-1]])
    ends = np.r_[starts[1:], len(later)]
    for a, lo, hi in zip(later[starts].tolist(), starts.tolist(), ends.tolist()):
        if not kept[a]:
            continue
        for b in earlier[lo:hi].tolist():  # ascending: the earliest kept one
            if kept[b]:
                partner[a] = b
                kept[a] = False
                break
    return partner


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``(a, b)`` pairs of non-negative ints below 2**31, sorted by ``a`` then ``b``."""
    code = np.unique((a.astype(np.int64) << 31) | b.astype(np.int64))
    return code >> 31, code & ((1 << 31) - 1)
