"""Near-duplicate removal: MinHash LSH over normalised text, native code for the per-row work.

For each row the texts of the key fields (default ``instruction`` and ``response``; the context is left
out by default because many questions share one passage) are cut into character shingles of
``shingle`` characters (default 3: a Hangul syllable carries more than a Latin letter) after dropping
everything but letters and digits and lower-casing (:mod:`.shingles`: numpy over the code units of a
whole column). rensa's R-MinHash (Rust) turns each row's shingle hashes into a signature of
``num_perm`` (default 256) 32-bit values, fixed seed. The signature is cut into ``b`` bands of ``r``
values, chosen for the Jaccard ``threshold`` by minimising the weighted false-positive and
false-negative areas (weights 0.1/0.9: a false candidate costs one check, a missed one lets a
near-duplicate through; 23 x 11 at 0.8), and each band is hashed to a 32-bit key (:mod:`.lsh`).

A row is dropped as ``near_duplicate_of:<id>`` when a kept row before it (in input order) shares a
band key with it and their estimated Jaccard similarity is at least ``threshold``; ``<id>`` is the
earliest such kept row. The estimate compares the low ``check_bits`` (default 4) bits of the two
signatures value by value (b-bit MinHash: two different minima agree in 4 bits with probability
1/16, which the estimate corrects for; 256 values at 4 bits estimate better than 128 at 8 in the same
128 bytes). A row with no letters or digits is kept and never matched.

Protocol (see :mod:`kodolly.corridor.chain`): ``prepare(rows)`` / ``prepare_table(table)`` compute per row,
purely, ``(band keys + check signature as bytes, id)`` — they run in the worker processes;
``decide(prepared)`` runs in input order in the main process; ``apply == decide(prepare(...))``.
A pickled filter carries no state.

State (per kept row, numpy only): the band keys and kept numbers in :class:`.lsh.BandIndex`
(8 bytes a band), the check signature (``num_perm * check_bits / 8`` bytes) and the id (UTF-8 in an
Arrow array): with the defaults at 0.8, 184 + 128 + len(id) + 4 bytes a kept row.

``decide`` for one batch is three steps: (1) candidates — the batch rows' band keys looked up in the
index and matched among themselves; (2) the check — estimated Jaccard of each candidate pair from
the two signatures; (3) the verdicts — in input order, a row with a checked pair to a kept row is
dropped naming the earliest one, else kept and added to the index. Steps 1 and 2 only ever look at
rows sharing one ``(band, key)``, so they are split by band key with ``--engine ray``:
:meth:`NearDupFilter.shuffle_pieces` deals each shard's buckets to partitions by a hash of
``(band, key)``; :meth:`NearDupFilter.checked_pairs` finds and checks one partition's pairs
``(later, earlier)``; :meth:`NearDupFilter.earliest_kept` (step 3, :func:`.lsh.earliest_kept_partner`)
needs only those pairs and gives the same verdicts as this one-process version. A bucket there holds
every row, not only kept ones (in this version the index holds only kept rows: a dropped row can
never be named); step 3 decides in input order, so a row matched only to dropped rows is kept. Rows
an earlier filter dropped (exact dedup) are left out of the partitions, as they never reach
``decide`` here.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

# rensa runs big batches on a Rust (rayon) thread pool, and that pool does not survive fork(): a
# worker process forked after the main process used rensa (a JSON array converted in the main
# process before a JSONL input's workers start) would wait forever for threads it does not have.
# With one thread rensa works inline; the parallelism comes from kodolly's worker processes.
os.environ["RAYON_NUM_THREADS"] = "1"
import rensa  # noqa: E402

from ...errors import ConfigError
from .lsh import (
    BandIndex, SortedBands, band_codes, band_keys, bucket_of, earliest_kept_partner, optimal_bands, pairs_sharing, pairs_within,
    sort_codes, sorted_unique, unique_pairs,
)
from .shingles import as_text_array, shingle_hashes, shingle_sets

__all__ = ["NearDupFilter", "NEAR_DUP_FIELDS", "DEFAULT_FIELDS", "shingle_sets"]

NEAR_DUP_FIELDS = ("instruction", "context", "response")
DEFAULT_FIELDS = ("instruction", "response")
SEED = 1
LSH_WEIGHTS = (0.1, 0.9)  # (false positive, false negative) weights for choosing LSH bands and rows
CHECK_BITS = (4, 8)  # bits of each signature value kept for the Jaccard check (4: two values a byte)
PIECE = 1024  # rows per rensa call in prepare
_SHIFT = 16
_BLOCK = 1 << _SHIFT  # kept rows per block of stored signatures


class KeptRows:
    """The kept rows' check signatures (numpy blocks of ``_BLOCK`` rows) and ids (one Arrow array per batch)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.count = 0
        self._blocks: list[np.ndarray] = []
        self._id_arrays: list[pa.Array] = []
        self._id_starts: list[int] = []

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._blocks) + sum(a.nbytes for a in self._id_arrays)

    def add(self, signatures: np.ndarray, ids: list[str]) -> None:
        if not ids:
            return
        self._id_starts.append(self.count)
        self._id_arrays.append(pa.array(ids, pa.string()))
        done = 0
        while done < len(ids):
            at = self.count % _BLOCK
            if at == 0:
                self._blocks.append(np.empty((_BLOCK, self.width), dtype=np.uint8))
            take = min(_BLOCK - at, len(ids) - done)
            self._blocks[-1][at : at + take] = signatures[done : done + take]
            done += take
            self.count += take

    def signatures(self, numbers: np.ndarray) -> np.ndarray:
        out = np.empty((len(numbers), self.width), dtype=np.uint8)
        block_of = numbers >> _SHIFT
        for b in np.unique(block_of):
            sel = block_of == b
            out[sel] = self._blocks[int(b)][numbers[sel] & (_BLOCK - 1)]
        return out

    def id(self, number: int) -> str:
        k = int(np.searchsorted(self._id_starts, number, "right")) - 1
        return self._id_arrays[k][number - self._id_starts[k]].as_py()


class NearDupFilter:
    name = "near_dup"
    # decidable by a shuffle on (band, key): shuffle_pieces -> checked_pairs per partition -> earliest_kept
    # (the ray engine)
    banded = True

    def __init__(
        self,
        threshold: float = 0.8,
        *,
        shingle: int = 3,
        num_perm: int = 256,
        fields: str | Iterable[str] | None = None,
        check_bits: int = 4,
    ) -> None:
        try:
            self.threshold = float(threshold)
        except (TypeError, ValueError):
            raise ConfigError(f"near-dup threshold {threshold!r} is not a number") from None
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"near-dup threshold {threshold!r} must be in (0, 1]")
        if not isinstance(shingle, int) or isinstance(shingle, bool) or shingle < 1:
            raise ConfigError(f"near-dup shingle size {shingle!r} must be a whole number >= 1")
        if not isinstance(num_perm, int) or isinstance(num_perm, bool) or not 16 <= num_perm <= 1024 or num_perm % 2:
            raise ConfigError(f"near-dup num_perm {num_perm!r} must be an even whole number from 16 to 1024")
        if check_bits not in CHECK_BITS:
            raise ConfigError(f"near-dup check_bits {check_bits!r} must be one of {', '.join(map(str, CHECK_BITS))}")
        self.check_bits = check_bits
        self.shingle = shingle
        self.num_perm = num_perm
        if fields is None:
            self.fields = DEFAULT_FIELDS
        else:
            names = [p.strip() for f in ([fields] if isinstance(fields, str) else fields) for p in str(f).split(",") if p.strip()]
            bad = [n for n in names if n not in NEAR_DUP_FIELDS]
            if bad or not names:
                raise ConfigError(f"near-dup fields: {', '.join(bad) or 'none given'} (fields: {', '.join(NEAR_DUP_FIELDS)})")
            self.fields = tuple(dict.fromkeys(names))
        self.bands, self.rows_per_band = optimal_bands(self.threshold, num_perm, LSH_WEIGHTS)
        # b-bit check: P(b low bits agree) = J + (1 - J) / 2**b, so J >= t <=> agreements >= need
        chance = 2.0 ** -check_bits
        self._need = math.ceil(num_perm * (self.threshold * (1 - chance) + chance) - 1e-9)
        self._sig_bytes = num_perm * check_bits // 8
        self._width = 4 * self.bands + self._sig_bytes  # bytes of one prepared row
        self._reset()

    def _reset(self) -> None:
        self._index = BandIndex(self.bands)
        self._kept = KeptRows(self._sig_bytes)

    def settings(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "shingle": self.shingle,
            "num_perm": self.num_perm,
            "fields": list(self.fields),
            "seed": SEED,
            "minhash": f"rensa RMinHash (algorithm {getattr(rensa.RMinHash, 'ALGORITHM_VERSION', '?')})",
            "lsh_weights": list(LSH_WEIGHTS),
            "lsh_bands": self.bands,
            "lsh_rows": self.rows_per_band,
            "check_bits": self.check_bits,
        }

    @property
    def state_bytes(self) -> int:
        """Bytes held for the kept rows (index, signatures, ids)."""
        return self._index.nbytes + self._kept.nbytes

    def __getstate__(self) -> dict[str, Any]:  # workers only prepare: they never need the state
        return {k: v for k, v in self.__dict__.items() if k not in ("_index", "_kept")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- per row, pure (workers) -------------------------------------------------------------

    def prepare(self, rows: list[dict[str, Any]]) -> list[tuple[bytes, str] | None]:
        """Per row ``(band keys and check signature, id)``, or ``None`` for a row without letters."""
        return self._prepare([[r[name] for r in rows] for name in self.fields], [r["id"] for r in rows])

    def prepare_table(self, table: Any) -> list[tuple[bytes, str] | None]:
        """:meth:`prepare` for an Arrow table of rows."""
        return self._prepare([table.column(name) for name in self.fields], table.column("id").to_pylist())

    def _prepare(self, columns: list[Any], ids: list[str]) -> list[tuple[bytes, str] | None]:
        n = len(ids)
        columns = [as_text_array(col) for col in columns]
        out: list[tuple[bytes, str] | None] = []
        for s in range(0, n, PIECE):  # pieces bound the temporaries (rensa's rows come back as lists)
            out.extend(self._prepare_piece([col.slice(s, PIECE) for col in columns], ids[s : s + PIECE]))
        return out

    def _prepare_piece(self, columns: list[pa.Array], ids: list[str]) -> list[tuple[bytes, str] | None]:
        n = len(ids)
        hashes, offsets = shingle_hashes(columns, self.shingle)
        k = self.num_perm
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets.astype(np.uint64), k, SEED)
        sig = np.fromiter(itertools.chain.from_iterable(matrix.to_rows()), dtype=np.uint32, count=n * k).reshape(n, k)
        keys = band_keys(sig, self.bands, self.rows_per_band)
        if self.check_bits == 8:
            check = (sig & 0xFF).astype(np.uint8)
        else:  # two 4-bit values a byte
            low = (sig & 0xF).astype(np.uint8)
            check = low[:, 0::2] | (low[:, 1::2] << 4)
        raw = np.concatenate([keys.view(np.uint8), check], axis=1).tobytes()
        w = self._width
        empty = (offsets[1:] == offsets[:-1]).tolist()
        return [None if empty[i] else (raw[i * w : (i + 1) * w], ids[i]) for i in range(n)]

    # -- in input order (main process) -------------------------------------------------------

    @staticmethod
    def duplicate_reason(kept_id: str) -> str:
        """The reason of a row dropped as similar to the kept row ``kept_id``."""
        return "near_duplicate_of:" + kept_id

    def _unpack(self, prepared: list[tuple[bytes, str] | None]) -> tuple[list[int], np.ndarray, np.ndarray, list[str]]:
        """``(live, keys, sigs, ids)``: the rows with letters, their ``(m, bands)`` band keys, check
        signatures and ids."""
        live = [i for i, p in enumerate(prepared) if p is not None]
        m, nb = len(live), 4 * self.bands
        blob = np.frombuffer(b"".join([prepared[i][0] for i in live]), dtype=np.uint8).reshape(m, self._width)
        keys = np.ascontiguousarray(blob[:, :nb]).view(np.uint32).reshape(m, self.bands)
        return live, keys, blob[:, nb:], [prepared[i][1] for i in live]

    def decide(self, prepared: list[tuple[bytes, str] | None]) -> list[str | None]:
        """Verdicts for the prepared rows of one batch, in input order, updating the index."""
        out: list[str | None] = [None] * len(prepared)
        live, keys, sigs, ids = self._unpack(prepared)
        if not live:
            return out
        m = len(live)
        # 1 + 2: candidates among the kept rows and within the batch, checked on the signatures
        batch = SortedBands(keys)
        q, kept_no = self._index.lookup(batch)
        if len(q):
            ok = self.similar(sigs[q], self._kept.signatures(kept_no))
            q, kept_no = q[ok], kept_no[ok]
        first_kept: dict[int, int] = {}
        for a, b in zip(q.tolist(), kept_no.tolist()):  # sorted by (a, b): the first b is the earliest
            first_kept.setdefault(a, b)
        later, earlier = pairs_within(batch)
        if len(later):
            ok = self.similar(sigs[later], sigs[earlier])
            later, earlier = later[ok], earlier[ok]
        # 3: verdicts in input order: against the index first (its rows are all earlier), then greedily
        keep = np.ones(m, dtype=bool)
        for a, number in first_kept.items():
            out[live[a]] = self.duplicate_reason(self._kept.id(number))
            keep[a] = False
        partner = earliest_kept_partner(later, earlier, keep)
        for a in np.flatnonzero(partner >= 0).tolist():
            out[live[a]] = self.duplicate_reason(ids[int(partner[a])])
        keep &= partner < 0
        kept_rows = np.flatnonzero(keep)
        numbers = np.full(m, -1, dtype=np.int64)
        numbers[kept_rows] = np.arange(self._kept.count, self._kept.count + len(kept_rows))
        self._index.insert(batch, numbers)
        self._kept.add(sigs[kept_rows], [ids[i] for i in kept_rows.tolist()])
        return out

    # -- split by band key (a cluster: the ray engine) ------------------------------------------
    # decide's steps 1 + 2 per (band, key) bucket, in partitions that each hold their buckets only, and
    # step 3 over all the checked pairs (see the module docstring)

    def shuffle_pieces(self, prepared: list[tuple[bytes, str] | None], positions: np.ndarray, n: int) -> list[dict[str, Any]]:
        """One shard's prepared rows (``positions``: each row's global position, ascending) dealt to
        ``n`` partitions by a hash of ``(band, key)``: per partition, the rows with at least one bucket
        there (``pos``, check signature ``sig``, ``ids``) and those buckets (``code`` = band << 32 | key,
        ``row`` = the row in this piece). A row's signature goes to each partition holding one of its
        buckets (at most ``min(n, bands)`` copies)."""
        from ...corridor.keyed import deal

        live, keys, sigs, ids = self._unpack(prepared)
        pos = np.asarray(positions, dtype=np.int64)[live]
        codes = band_codes(keys)
        order, bounds = deal(bucket_of(codes, n).ravel(), n)
        pieces = []
        for k in range(n):
            flat = order[bounds[k] : bounds[k + 1]]  # ascending: row-major, so rows in order
            row = flat // self.bands
            rows = sorted_unique(row)
            pieces.append({
                "pos": pos[rows], "sig": np.ascontiguousarray(sigs[rows]), "ids": pa.array([ids[r] for r in rows.tolist()], pa.string()),
                "code": codes.ravel()[flat], "row": np.searchsorted(rows, row).astype(np.int32),
            })
        return pieces

    def checked_pairs(self, pieces: list[dict[str, Any]], dropped: np.ndarray) -> tuple[dict[str, Any], dict[str, int]]:
        """One partition's pieces from every shard (in position order) -> its checked pairs
        ``{later, earlier, earlier_id}`` (positions; every pair of rows sharing one of its buckets whose
        estimated Jaccard is at least the threshold) and counts (``rows``, ``buckets``, ``candidates``,
        ``pairs``). Rows at the positions ``dropped`` (dropped earlier in the chain) are left out, as
        the streaming filter never sees them."""
        pos = np.concatenate([p["pos"] for p in pieces] or [np.zeros(0, np.int64)])
        sig = np.concatenate([p["sig"] for p in pieces] or [np.zeros((0, self._sig_bytes), np.uint8)])
        starts = np.cumsum([0] + [len(p["pos"]) for p in pieces])
        code = np.concatenate([p["code"] for p in pieces] or [np.zeros(0, np.uint64)])
        row = np.concatenate([p["row"] + s for p, s in zip(pieces, starts)] or [np.zeros(0, np.int64)])
        present = len(pos)  # every row of a piece has a bucket there
        if len(dropped):
            gone = np.isin(pos, dropped)
            keep = ~gone[row]
            code, row = code[keep], row[keep]
            present -= int(gone.sum())
        code, row = sort_codes(code, row)
        later, earlier = pairs_sharing([(code, row)])
        candidates = len(later)
        if len(later):
            ok = self.similar(sig[later], sig[earlier])
            later, earlier = later[ok], earlier[ok]
        ids = pa.concat_arrays([p["ids"] for p in pieces]) if pieces else pa.array([], pa.string())
        earlier_id = ids.take(pa.array(earlier, pa.int64()))
        buckets = int(np.count_nonzero(np.r_[True, code[1:] != code[:-1]])) if len(code) else 0
        counts = {"rows": present, "buckets": buckets, "candidates": int(candidates), "pairs": int(len(later))}
        return {"later": pos[later], "earlier": pos[earlier], "earlier_id": earlier_id}, counts

    @staticmethod
    def earliest_kept(pairs: list[dict[str, Any]]) -> tuple[np.ndarray, list[str]]:
        """Step 3 over the checked pairs of every partition: ``(positions, kept ids)`` of the rows
        dropped (ascending), each naming its earliest partner that is kept when its turn comes in input
        order. A row matched only to dropped rows is kept (a chain of edits is not one group)."""
        later = np.concatenate([p["later"] for p in pairs] or [np.zeros(0, np.int64)])
        earlier = np.concatenate([p["earlier"] for p in pairs] or [np.zeros(0, np.int64)])
        if not len(later):
            return np.zeros(0, np.int64), []
        ids = pa.concat_arrays([p["earlier_id"] for p in pairs])
        every, dense = np.unique(np.concatenate([later, earlier]), return_inverse=True)
        a, b = dense[: len(later)], dense[len(later) :]
        first = dict(zip(b.tolist(), range(len(b))))  # an earlier row's id, from one of its pairs
        a, b = unique_pairs(a, b)  # a pair found in two partitions counts once
        partner = earliest_kept_partner(a, b, np.ones(len(every), dtype=bool))
        dropped = np.flatnonzero(partner >= 0)
        named = np.array([first[int(partner[d])] for d in dropped.tolist()], dtype=np.int64)
        return every[dropped], ids.take(pa.array(named, pa.int64())).to_pylist()

    def similar(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per pair of check signatures: estimated Jaccard >= threshold."""
        agree = np.zeros(len(a), dtype=np.int64)
        step = 65536  # pairs at a time, to bound the temporary
        for s in range(0, len(a), step):
            diff = a[s : s + step] ^ b[s : s + step]
            if self.check_bits == 8:
                agree[s : s + step] = np.count_nonzero(diff == 0, axis=1)
            else:
                agree[s : s + step] = np.count_nonzero((diff & 0x0F) == 0, axis=1) + np.count_nonzero((diff & 0xF0) == 0, axis=1)
        return agree >= self._need

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        return self.decide(self.prepare(rows))
