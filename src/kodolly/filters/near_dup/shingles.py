"""Character shingles of whole Arrow columns at once, as 64-bit values, in numpy.

The texts of a row's fields are read as UTF-16 code units (one ``decode``/``encode`` of the joined
column buffer, no Python object per row or character) and mapped through one table over the Basic
Multilingual Plane: a letter or digit (``str.isalnum``) becomes its lower case (when that is one
character), anything else — spaces, punctuation, symbols, combining marks, and characters outside the
BMP (emoji), whose surrogate halves are not letters — is dropped. So spacing, punctuation and Latin
case do not count; a Hangul syllable is its own lower case.

A shingle is ``size`` consecutive characters of one cleaned field (shingles do not run from one
field into the next). For ``size <= 4`` its value is the characters packed 16 bits each into a
64-bit integer — exact: two different shingles never share a value; for larger sizes a 64-bit
polynomial hash. A field shorter than ``size`` is one shingle (padded with a value no character
has); an empty one has none. :func:`shingle_values` gives these values (exact Jaccard is measured on
them); :func:`shingle_hashes` mixes them (a bijection of 64-bit integers, so no new collisions) for
the MinHash. Both work ``SLICE`` rows at a time so the arrays stay in the CPU cache.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIELD_END = 0xFFFF  # after every field (a non-character: never in the table's output)
ROW_END = 0xFFFE  # after every row
SLICE = 512  # rows per numpy pass
_POLY = np.uint64(0x100000001B3)  # odd multiplier of the polynomial hash for shingles longer than 4
_TABLE: np.ndarray | None = None


def _table() -> np.ndarray:
    """UTF-16 code unit -> lower-case letter/digit, or 0 (drop); the two separators to their markers."""
    global _TABLE
    if _TABLE is None:
        table = np.zeros(0x10000, dtype=np.uint16)
        for c in range(0x10000):
            ch = chr(c)
            if ch.isalnum():
                low = ch.lower()
                table[c] = ord(low) if len(low) == 1 and ord(low) < ROW_END else c
        table[0] = FIELD_END
        table[1] = ROW_END
        _TABLE = table
    return _TABLE


def as_text_array(texts: Any) -> pa.Array:
    """A pyarrow string array (one chunk) from a list of str or an Arrow (chunked) array."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    elif not isinstance(texts, pa.Array):
        texts = list(texts)
        try:
            texts = pa.array(texts, pa.string())
        except (UnicodeEncodeError, pa.ArrowInvalid):  # a lone surrogate: not a letter, dropped like one
            texts = pa.array([t.encode("utf-8", "replace").decode("utf-8") for t in texts], pa.string())
    if pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.string())
    if texts.null_count:
        raise ValueError("near-dup: a text is null")
    return texts


def _units(columns: list[pa.Array]) -> np.ndarray:
    """The cleaned code units of the rows: each field followed by two FIELD_END, each row by two ROW_END."""
    n = len(columns[0])
    ends = pa.array(["\x01\x01"] * n, pa.string())
    joined = pc.binary_join_element_wise(*columns, ends, "\x00\x00")
    buffers = joined.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[joined.offset : joined.offset + n + 1]
    raw = memoryview(buffers[2])[int(offsets[0]) : int(offsets[-1])]
    units = np.frombuffer(str(raw, "utf-8").encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
    mapped = _table()[units]
    return mapped[mapped != 0]


def _slice_values(columns: list[pa.Array], size: int) -> tuple[np.ndarray, np.ndarray]:
    c = _units(columns)
    row_ends = np.flatnonzero(c == ROW_END)[1::2] + 1  # one past each row's last unit
    letter = c < ROW_END
    pad = np.zeros(size, dtype=bool)  # windows at the end read padding
    letter_p = np.concatenate([letter, pad])
    full = letter_p[: len(c)].copy()
    for j in range(1, size):
        full &= letter_p[j : j + len(c)]
    starts_field = letter.copy()
    starts_field[1:] &= ~letter[:-1]
    valid = full | starts_field  # a whole window of letters, or the start of a field (short ones padded)
    at = np.flatnonzero(valid)
    padded = np.concatenate([c, np.full(max(size, 4), FIELD_END, dtype=np.uint16)])
    if size <= 4:
        # every 4 consecutive units read as one little-endian uint64 (a 2-byte-stride view, no copy),
        # masked to the shingle's units: unit j of the shingle lands in bits 16j .. 16j + 15
        windows = np.ndarray(shape=(len(c),), dtype=np.uint64, buffer=padded, strides=(2,))
        values = windows[at]
        if size < 4:
            values &= np.uint64((1 << (16 * size)) - 1)
    else:
        cp = padded.astype(np.uint64)
        with np.errstate(over="ignore"):
            values = cp[at] + np.uint64(1)
            for j in range(1, size):
                values *= _POLY
                values += cp[at + j] + np.uint64(1)
    offsets = np.zeros(len(row_ends) + 1, dtype=np.int64)
    offsets[1:] = np.searchsorted(at, row_ends)
    return values, offsets


def shingle_values(columns: Sequence[Any], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every shingle value of every row (uint64, in row order, repeats included) and row offsets.

    ``columns``: one text column per field (Arrow arrays or lists of str, all the same length)."""
    cols = [as_text_array(col) for col in columns]
    n = len(cols[0])
    parts: list[np.ndarray] = []
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for s in range(0, n, SLICE):
        values, off = _slice_values([col.slice(s, SLICE) for col in cols], size)
        parts.append(values)
        offsets.append(off[1:] + base)
        base += len(values)
    return (np.concatenate(parts) if parts else np.zeros(0, np.uint64)), np.concatenate(offsets)


def mix64(values: np.ndarray) -> np.ndarray:
    """A bijection of uint64 that spreads every input bit over the high bits (in place)."""
    with np.errstate(over="ignore"):
        values *= np.uint64(0xBF58476D1CE4E5B9)
        values ^= values >> np.uint64(31)
        values *= np.uint64(0x94D049BB133111EB)
    return values


def shingle_hashes(columns: Sequence[Any], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The mixed 64-bit hashes of every row's shingles (concatenated) and row offsets."""
    values, offsets = shingle_values(columns, size)
    return mix64(values), offsets


def shingle_sets(columns: Sequence[Any], size: int) -> list[set[int]]:
    """The set of shingle values of each row (for tests and for measuring exact Jaccard)."""
    values, offsets = shingle_values(columns, size)
    return [set(values[offsets[i] : offsets[i + 1]].tolist()) for i in range(len(offsets) - 1)]


def encode(shingle: str, size: int = 3) -> int:
    """The value of one cleaned shingle of at most ``size <= 4`` BMP characters (a shorter one is a
    whole short field)."""
    if not 1 <= len(shingle) <= size <= 4:
        raise ValueError("encode: 1 <= len(shingle) <= size <= 4")
    units = [ord(ch) for ch in shingle] + [FIELD_END] * (size - len(shingle))
    return sum(c << (16 * j) for j, c in enumerate(units))
