"""Near-duplicate removal (opt-in, extra ``near-dup``): MinHash LSH over normalised Hangul text.

For each row the text of the key fields (default ``instruction`` and ``response``; the context is
left out by default because many questions share one passage) is casefolded and stripped of
everything but letters and digits (so spacing and punctuation do not count), then cut into
character shingles of ``shingle`` characters (default 3: a Hangul syllable carries more than a Latin
letter). A MinHash of ``num_perm`` permutations (datasketch, fixed seed, shingles hashed with
xxh3) is cut into LSH bands; the number of bands and rows per band are chosen by datasketch's
MinHashLSH for the Jaccard ``threshold`` (weighted towards recall), and the band index itself is a
compact one kept here. A row whose band candidates include an earlier row with an estimated
Jaccard similarity ``>= threshold`` is dropped as
``near_duplicate_of:<id of the earliest such row>``; otherwise it is added to the index.

Deterministic: the permutations come from a fixed seed, the shingle hash is xxh3, and the
earliest matching kept row wins. Memory is about 2 KiB per kept row with the defaults (the band
index plus the 512-byte signature kept for the Jaccard check), so this is for runs of up to a few
million rows.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import xxhash

from ..errors import ConfigError, require

NEAR_DUP_FIELDS = ("instruction", "context", "response")
DEFAULT_FIELDS = ("instruction", "response")
_NOT_WORD = re.compile(r"[\W_]+")
SEED = 1
LSH_WEIGHTS = (0.1, 0.9)  # (false positive, false negative) weights for choosing LSH bands and rows


def shingles(text: str, size: int) -> set[bytes]:
    """The character shingles of ``text`` after casefolding and dropping all but letters and digits."""
    text = _NOT_WORD.sub("", text.casefold())
    if not text:
        return set()
    if len(text) <= size:
        return {text.encode("utf-8", "surrogatepass")}
    return {text[i : i + size].encode("utf-8", "surrogatepass") for i in range(len(text) - size + 1)}


def _hash32(data: bytes) -> int:
    return xxhash.xxh3_64_intdigest(data) & 0xFFFFFFFF


class NearDupFilter:
    name = "near_dup"

    def __init__(
        self,
        threshold: float = 0.8,
        *,
        shingle: int = 3,
        num_perm: int = 128,
        fields: str | Iterable[str] | None = None,
    ) -> None:
        try:
            self.threshold = float(threshold)
        except (TypeError, ValueError):
            raise ConfigError(f"near-dup threshold {threshold!r} is not a number") from None
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"near-dup threshold {threshold!r} must be in (0, 1]")
        if not isinstance(shingle, int) or isinstance(shingle, bool) or shingle < 1:
            raise ConfigError(f"near-dup shingle size {shingle!r} must be a whole number >= 1")
        if not isinstance(num_perm, int) or isinstance(num_perm, bool) or num_perm < 16:
            raise ConfigError(f"near-dup num_perm {num_perm!r} must be a whole number >= 16")
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
        datasketch = require("datasketch", "near-dup")
        self._np = require("numpy", "near-dup")
        self._MinHash = datasketch.MinHash
        # datasketch chooses the bands (b) and rows per band (r) for the threshold. Candidates are
        # checked against the estimated Jaccard below, so a false positive costs one comparison
        # while a false negative lets a near-duplicate through: weigh towards recall.
        params = datasketch.MinHashLSH(threshold=self.threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
        self.bands, self.rows_per_band = params.b, params.r
        # One MinHash supplies the permutations every row's MinHash shares (no per-row RandomState).
        self._template = datasketch.MinHash(num_perm=num_perm, seed=SEED, hashfunc=_hash32)
        # The index, kept compact (datasketch's MinHashLSH takes ~7 KiB a row): per band, a dict
        # from a 60-bit hash of the band's values to the kept row number (an int, or a list of
        # them when rows share the band); the kept rows' signatures in one bytearray.
        self._index: list[dict[int, Any]] = [{} for _ in range(self.bands)]
        self._signatures = bytearray()
        self._ids: list[str] = []  # kept row number -> row id

    def settings(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "shingle": self.shingle,
            "num_perm": self.num_perm,
            "fields": list(self.fields),
            "seed": SEED,
            "lsh_weights": list(LSH_WEIGHTS),
            "lsh_bands": self.bands,
            "lsh_rows": self.rows_per_band,
        }

    def _minhash(self, grams: set[bytes]):
        template = self._template
        mh = self._MinHash(
            num_perm=self.num_perm, seed=SEED, hashfunc=_hash32,
            permutations=template.permutations, scheme=template.scheme,
        )
        mh.update_batch(grams)  # a min over the set: the order does not matter
        return mh

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        np = self._np
        fields, index, ids = self.fields, self._index, self._ids
        width = self.rows_per_band * 4  # bytes of one band (uint32 values)
        sig_bytes = self.num_perm * 4
        need = self.threshold * self.num_perm
        out: list[str | None] = []
        for row in rows:
            grams = shingles("\n".join(row[name] for name in fields), self.shingle)
            if not grams:  # no letters or digits: nothing to compare
                out.append(None)
                continue
            hv = self._minhash(grams).hashvalues.astype(np.uint32, copy=False)
            raw = hv.tobytes()
            keys = [xxhash.xxh3_64_intdigest(raw[i * width : (i + 1) * width]) >> 4 for i in range(self.bands)]
            candidates: set[int] = set()
            for band, key in zip(index, keys):
                found = band.get(key)
                if found is None:
                    continue
                if type(found) is int:
                    candidates.add(found)
                else:
                    candidates.update(found)
            match = None
            for number in sorted(candidates):
                other = np.frombuffer(self._signatures, dtype=np.uint32, count=self.num_perm, offset=number * sig_bytes)
                same = int(np.count_nonzero(other == hv))
                del other  # release the view before the bytearray grows
                if same >= need:
                    match = number
                    break
            if match is not None:
                out.append("near_duplicate_of:" + ids[match])
                continue
            number = len(ids)
            for band, key in zip(index, keys):
                found = band.get(key)
                if found is None:
                    band[key] = number
                elif type(found) is int:
                    band[key] = [found, number]
                else:
                    found.append(number)
            self._signatures += raw
            ids.append(row["id"])
            out.append(None)
        return out
