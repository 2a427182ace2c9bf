"""Split a JSON array (top-level, or inside an envelope such as ``{"data": [...]}``) into its items.

The splitter never parses the file: it finds the byte span of each item of the record array, and
the caller parses each item on its own (with orjson). So a bad item is one bad item, the next one
is still read, a long string costs linear time, and memory is bounded by the largest item kept
(``max_record_bytes``), whatever the nesting.

How: the UTF-8 bytes are scanned in blocks with numpy. The unescaped quotes (a quote preceded by an
even run of backslashes) toggle "inside a string"; the brackets, braces, commas and colons outside
strings give the depth (a cumulative sum of +1/-1); a comma at the depth of the record array
separates two items, its closing bracket ends the last one. Only those few structural events at
the depth of the array or above reach Python code; everything inside an item is skipped in numpy.

API (see also ``JSON_ITEMS_API.md``)::

    parse_record_paths(["data.item"])          -> (("data",),)      key paths of record arrays
    iter_items(stream, paths, limits)          -> Iterator[Item]    every item, with its bytes
    plan_ranges(stream, paths, target_bytes[, limits]) -> Iterator[PlannedRange]  cheap: no item is kept
    iter_range(stream, item_range, limits)     -> Iterator[Item]    the items of one planned range
    plan_range_bytes(stream, paths, target_bytes, limits) -> Iterator[RangeBytes]  ranges with their bytes
    iter_range_bytes(data, item_range, limits) -> Iterator[Item]    the items of such a range
    iter_range_at(stream, item_range, limits) -> Iterator[Item]     the same from a stream at its start
    iter_from(stream, start, first_index, limits) -> Iterator[Item] the items from one on, to the end
    check_depth(data, max_depth)               -> bool              one JSON text nested too deep?
    lines_within(data, max_depth, max_bytes[, ends]) -> bool        JSON Lines all within the limits?

``stream`` is a binary stream of UTF-8 bytes positioned at the start of the JSON text (after any
BOM; other encodings are recoded first, see :mod:`kodolly.io.readers`). Offsets are offsets in that
stream. ``paths`` are record paths as tuples of object keys: ``()`` is a top-level array, ``("data",)``
the array under ``"data"`` of a top-level object, ``("a", "b")`` under ``{"a": {"b": [...]}}``.
A top-level array is always the record array, whatever the paths say. An envelope may hold several
of the paths: the items of each are yielded in file order, numbered on.

An :class:`Item` is ``(index, start, end, data, too_deep, too_large)``: ``start``/``end`` cover
the item and the white space around it, not the separating comma or bracket; ``data`` is
``stream[start:end]`` (only its first ``limits.head_bytes`` when ``too_large``). An unterminated
array (a truncated file) ends with the rest of the file as its last item, so it is not lost; a
string left open swallows the rest of the file into one item (a JSON text has no other way to say
where a string ends).
"""

from __future__ import annotations

import io
import re
import threading
from typing import BinaryIO, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import orjson

from .limits import Limits

BLOCK_BYTES = 1 << 20

# The bytes that matter, by class (all other bytes are 0; backslashes are looked at only before quotes).
_QUOTE, _BACKSLASH, _OPEN_SQ, _CLOSE_SQ, _OPEN_CURLY, _CLOSE_CURLY, _COMMA, _COLON = range(1, 9)
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[list(b'"[]{},:')] = [_QUOTE, _OPEN_SQ, _CLOSE_SQ, _OPEN_CURLY, _CLOSE_CURLY, _COMMA, _COLON]
_DELTA = np.array([0, 0, 0, 1, -1, 1, -1, 0, 0], dtype=np.int32)  # by class
_CLOSES = np.array([0, 0, 0, 0, 1, 0, 1, 1, 0], dtype=bool)  # "]" "}" ",": the end of an item
_CHAR = '?"\\[]{},:'
_WS = b" \t\r\n"
_NON_WS = re.compile(rb"[^ \t\r\n]")
_EMPTY = np.zeros(0, dtype=np.int64)
_new_item = tuple.__new__  # Item(...) without the keyword handling (the hot loop)


class Item(NamedTuple):
    """One item of the record array: ``data`` is ``stream[start:end]`` (its head when ``too_large``)."""

    index: int
    start: int
    end: int
    data: bytes
    too_deep: bool = False
    too_large: bool = False


class ItemRange(NamedTuple):
    """Consecutive items ``first_index ..< first_index + count`` in bytes ``start ..< end``."""

    start: int
    end: int
    first_index: int
    count: int


class JsonShapeError(ValueError):
    """The text is not a JSON array or object (its first character says so)."""


def parse_record_paths(record_paths: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Reader record paths (``"data.item"``, ``"a.b.item"``, ``"item"``) as key paths."""
    out = []
    for path in record_paths:
        parts = path.split(".")
        if parts[-1] != "item" or "item" in parts[:-1]:
            raise ValueError(f"unsupported record path {path!r}: object keys then one array ('a.b.item')")
        out.append(tuple(parts[:-1]))
    return tuple(out)


# ------------------------------------------------------------------------------------ the block scan


class _Scan:
    """Structural events of a UTF-8 JSON stream, block by block (string- and escape-aware)."""

    __slots__ = ("in_string", "backslashes", "depth", "buffers")

    def __init__(self, depth: int = 0) -> None:
        self.buffers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.in_string = False
        self.backslashes = 0  # length of the run of backslashes ending the previous block
        self.depth = depth

    def block(self, raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, classes and depth after each structural byte outside strings in ``raw``."""
        b = np.frombuffer(raw, dtype=np.uint8)
        n = len(b)
        if self.buffers is None or len(self.buffers[0]) < n:
            self.buffers = (np.empty(n, np.uint8), np.empty(n, bool), np.empty(n, bool))
        folded, mask, tmp = (buf[:n] for buf in self.buffers)
        np.bitwise_and(b, 0xDF, out=folded)  # "[" "{" -> 0x5B, "]" "}" -> 0x5D
        np.equal(folded, 0x5B, out=mask)
        for array, byte in ((folded, 0x5D), (b, 0x22), (b, 0x2C), (b, 0x3A)):  # ] } " , :
            np.equal(array, byte, out=tmp)
            np.bitwise_or(mask, tmp, out=mask)
        pos = np.flatnonzero(mask)  # the costly pass (numpy compares at memory speed)
        cls = _CLASS[b[pos]]
        is_quote = cls == _QUOTE
        carry = self.backslashes
        self.backslashes = _trailing_backslashes(b, carry)
        quote_at = np.flatnonzero(is_quote)
        if len(quote_at):
            qpos = pos[quote_at]
            escaped = _escaped(b, qpos, carry)
            if escaped is not None:
                is_quote[quote_at[escaped]] = False
        quotes_before = np.cumsum(is_quote, dtype=np.int32)  # at a structural byte: the quotes before it
        keep = cls > _BACKSLASH
        if self.in_string:
            keep &= (quotes_before & 1) == 1
        else:
            keep &= (quotes_before & 1) == 0
        if len(quotes_before) and quotes_before[-1] & 1:
            self.in_string = not self.in_string
        structural = pos[keep]
        chars = cls[keep]
        depth_after = np.cumsum(_DELTA[chars], dtype=np.int32)
        depth_after += self.depth
        if len(depth_after):
            self.depth = int(depth_after[-1])
        return structural, chars, depth_after


def _trailing_backslashes(b: np.ndarray, carry: int) -> int:
    """The length of the run of backslashes that ends block ``b`` (continuing ``carry``)."""
    n = len(b)
    run = 0
    while run < n and b[n - 1 - run] == 0x5C:
        run += 1
        if run == 64:  # a long run: count it at once
            nz = np.flatnonzero(b[::-1] != 0x5C)
            run = int(nz[0]) if len(nz) else n
            break
    return run + carry if run == n else run


def _escaped(b: np.ndarray, qpos: np.ndarray, carry: int) -> np.ndarray | None:
    """Which quotes at ``qpos`` are escaped (an odd run of backslashes right before), or None."""
    before = qpos - 1
    cand = np.flatnonzero(b[np.maximum(before, 0)] == 0x5C)
    cand = cand[qpos[cand] > 0]
    first_escaped = carry % 2 == 1 and qpos[0] == 0
    if not len(cand) and not first_escaped:
        return None
    escaped = np.zeros(len(qpos), dtype=bool)
    if len(cand):
        at = before[cand]  # the last backslash of each run; walk back while the run goes on
        run = np.ones(len(cand), dtype=np.int64)
        going = np.ones(len(cand), dtype=bool)
        while going.any():
            prev = at - run
            inside = prev >= 0
            going &= inside
            going[inside] &= b[prev[inside]] == 0x5C
            run += going
        run += np.where(at - run < 0, carry, 0)  # the run starts the block: add the one before
        escaped[cand] = (run & 1) == 1
    if first_escaped:
        escaped[0] = True
    return escaped


# ------------------------------------------------------------------------------------ items


class _Splitter:
    """Walks the envelope down the record paths and cuts each record array into items."""

    def __init__(self, stream: BinaryIO, paths: Sequence[tuple[str, ...]], limits: Limits, keep: bool,
                 offset: int = 0) -> None:
        self.stream = stream
        self.trie = _trie(paths)
        self.limits = limits
        self.keep = keep
        self.offset = offset  # stream offset of the first byte read
        self.index = 0
        # the open item: its start, the pieces kept from earlier blocks, their size, its flags
        self.start = 0
        self.pieces: list[bytes] = []
        self.kept = 0
        self.content = False
        self.deep = False

    def _open(self, start: int) -> None:
        self.start, self.pieces, self.kept, self.content, self.deep = start, [], 0, False, False

    def _keep(self, raw: bytes, a: int, b: int) -> None:
        """Bytes ``raw[a:b]`` belong to the open item (kept up to the size limit)."""
        if not self.content:
            self.content = _NON_WS.search(raw, a, b) is not None
        if self.keep and self.kept <= self.limits.max_record_bytes:
            piece = raw[a : min(b, a + self.limits.max_record_bytes + 1 - self.kept)]
            self.pieces.append(piece)
            self.kept += len(piece)

    def _close(self, end: int) -> Item:
        data = b"".join(self.pieces) if self.keep else b""
        too_large = end - self.start > self.limits.max_record_bytes
        if too_large:
            data = data[: self.limits.head_bytes]
        item = Item(self.index, self.start, end, data, self.deep, too_large)
        self.index += 1
        return item

    def items(self, in_range: int | None = None) -> Iterator[Item]:
        """Every item; ``in_range`` = the length of a planned range (the stream is at its start)."""
        limits = self.limits
        max_bytes = limits.max_record_bytes
        head = limits.head_bytes
        keep_data = self.keep
        scan = _Scan()
        pos = self.offset
        stop = None if in_range is None else pos + in_range
        # mode: 0 = before the top value, 1 = in an envelope object, 2 = in a record array
        mode = 0
        depth = 0  # of the envelope object (mode 1), inside the record array (mode 2)
        stack: list[dict] = []  # trie nodes of the enclosing envelope objects
        node = self.trie
        key_from: int | None = None  # absolute offset where the next key of the envelope starts
        key_buf = b""
        pending: dict | None | bool = False  # trie child of the key just read (False: no match)
        top_array = False
        if in_range is not None:
            mode, depth = 2, 1
            scan.depth = 1
            self._open(pos)
        while True:
            want = BLOCK_BYTES if stop is None else min(BLOCK_BYTES, stop - pos)
            raw = self.stream.read(want) if want > 0 else b""
            if not raw:
                break
            struct, chars, depth_after = scan.block(raw)
            depth_before = depth_after - _DELTA[chars]
            cut = 0  # first byte of the block not yet given to the open item
            i = 0  # first event not yet looked at
            deep = _EMPTY
            while True:
                if mode == 2:
                    # Items: the commas (and the closing bracket) at the array's depth, all at once.
                    ends = np.flatnonzero((depth_before[i:] == depth) & _CLOSES[chars[i:]]) + i
                    close = np.flatnonzero(chars[ends] != _COMMA)
                    last = int(close[0]) if len(close) else len(ends)
                    deep = struct[i:][depth_after[i:] > depth + limits.max_depth]
                    if len(deep):
                        edges = struct[ends[: last + 1]] if last < len(ends) else struct[ends]
                        counts = np.searchsorted(deep, edges)
                        deep_of = np.diff(np.concatenate(([0], counts))) > 0
                    commas = struct[ends[:last]].tolist()
                    if commas:
                        p = commas[0]
                        self._keep(raw, cut, p)
                        self.content = True  # an empty item before a comma is a bad item
                        if len(deep) and deep_of[0]:
                            self.deep = True
                        yield self._close(pos + p)
                        # the items wholly in this block, in a tight loop
                        flags = deep_of[1:len(commas)].tolist() if len(deep) else None
                        index = self.index
                        make = _new_item
                        a = p + 1
                        for j, p in enumerate(commas[1:]):
                            if p - a > max_bytes:
                                yield make(Item, (index, pos + a, pos + p, raw[a : a + head] if keep_data else b"",
                                                  bool(flags and flags[j]), True))
                            else:
                                yield make(Item, (index, pos + a, pos + p, raw[a:p] if keep_data else b"",
                                                  bool(flags and flags[j]), False))
                            index += 1
                            a = p + 1
                        self.index = index
                    if commas:
                        cut = commas[-1] + 1
                        self._open(pos + cut)
                    if last == len(ends):  # the array goes on in the next block
                        if len(deep) and int(np.searchsorted(deep, cut)) < len(deep):
                            self.deep = True
                        break
                    k = int(ends[last])
                    p = int(struct[k])
                    self._keep(raw, cut, p)
                    if len(deep) and deep_of[last]:
                        self.deep = True
                    if self.content:  # before "]": white space only is no item ("[]", "[1,]")
                        yield self._close(pos + p)
                    cut = p + 1
                    if in_range is not None or top_array:  # a range, or a top-level array, ends
                        return
                    mode, depth, key_from, pending = 1, depth - 1, None, False  # back to the envelope
                    i = k + 1
                    continue
                # The envelope: the events at its depth, one by one (few).
                changed = False
                for k in (np.flatnonzero(depth_before[i:] <= depth) + i).tolist():
                    p = int(struct[k])
                    c = int(chars[k])
                    d = int(depth_before[k])
                    if mode == 0:
                        if c == _OPEN_SQ:  # a top-level array is the record array
                            mode, depth, top_array = 2, 1, True
                        elif c == _OPEN_CURLY:
                            mode, depth = 1, 1
                            key_from, key_buf = pos + p + 1, b""
                        else:
                            raise JsonShapeError(f"not a JSON array or object (a {_CHAR[c]!r} first)")
                    elif d != depth:
                        continue
                    elif c in (_CLOSE_CURLY, _CLOSE_SQ):  # the envelope object closes
                        if not stack:
                            return
                        node = stack.pop()
                        depth -= 1
                        key_from, pending = None, False
                        i, changed = k + 1, True
                        break
                    elif c == _COMMA:
                        key_from, key_buf, pending = pos + p + 1, b"", False
                        continue
                    elif c == _COLON:
                        if key_from is not None:
                            key = _decode_key(key_buf + raw[max(key_from - pos, 0) : p])
                            if key is not None and key in node:
                                pending = node[key]
                        key_from, key_buf = None, b""
                        continue
                    elif c == _OPEN_SQ and pending is None:  # the value of a record path: its items
                        mode, depth = 2, depth + 1
                    elif c == _OPEN_CURLY and isinstance(pending, dict):  # one key down the path
                        stack.append(node)
                        node, depth = pending, depth + 1
                        key_from, key_buf = pos + p + 1, b""
                    else:
                        pending = False
                        continue
                    pending = False
                    if mode == 2:
                        self._open(pos + p + 1)
                        cut = p + 1
                    i, changed = k + 1, True
                    break
                if not changed:
                    break
            if mode == 2:
                self._keep(raw, cut, len(raw))
            elif mode == 1 and key_from is not None:
                key_buf = (key_buf + raw[max(key_from - pos, 0) :])[-(1 << 16) :]
            pos += len(raw)
        if mode == 2 and self.content:  # the input ends inside the array: the rest is its last item
            yield self._close(pos)


def _trie(paths: Sequence[tuple[str, ...]]) -> dict:
    """Key paths as nested dicts; a leaf (the record array's key) maps to None."""
    root: dict = {}
    for path in paths:
        if not path:
            continue
        node = root
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if child is None:  # also a record array at this key: the array wins
                break
            node = child
        else:
            node[path[-1]] = None
    return root


def _decode_key(raw: bytes) -> str | None:
    try:
        key = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return key if isinstance(key, str) else None


# ------------------------------------------------------------------------------------ public API


def iter_items(stream: BinaryIO, paths: Sequence[tuple[str, ...]] = (), limits: Limits = Limits()) -> Iterator[Item]:
    """Every item of the record array(s) of the JSON text in ``stream``, in order, with its bytes.

    Raises :class:`JsonShapeError` when the text is neither an array nor an object.
    """
    return _Splitter(stream, paths, limits, keep=True).items()


class PlannedRange(NamedTuple):
    """A planned range: ``seps`` the offsets from ``range.start`` of the commas between its items (one
    fewer than its items), ``plain`` whether no item of it is over the limits (too deep or too large)."""

    range: ItemRange
    seps: np.ndarray
    plain: bool


class RangeBytes(NamedTuple):
    """A :class:`PlannedRange` with its bytes: ``data`` is ``stream[range.start:range.end]``."""

    range: ItemRange
    data: bytes
    seps: np.ndarray
    plain: bool


def plan_ranges(stream: BinaryIO, paths: Sequence[tuple[str, ...]] = (), target_bytes: int = 8 << 20,
                limits: Limits | None = None) -> Iterator[PlannedRange]:
    """Ranges of whole items, each about ``target_bytes`` (one item may be more), for parallel reading.

    Cheap: the stream is scanned once and no item is kept. A range that ends at the end of the
    file without its closing bracket (a truncated file) ends at the end of the file. The items are
    cut with ``limits`` (none by default; ``plain`` says whether any is over them)."""
    lim = limits or Limits(max_depth=1 << 30, max_record_bytes=1 << 62)
    for item_range, ends, plain in _grouped(_Splitter(stream, paths, lim, keep=False).items(), target_bytes):
        yield PlannedRange(item_range, _seps(ends, item_range), plain)


def _seps(ends: list[int], item_range: ItemRange) -> np.ndarray:
    return np.asarray(ends[:-1], dtype=np.int64) - item_range.start


class RangeTooLarge(Exception):
    """:func:`plan_range_bytes` would hold more than its ``cap`` of the stream (an item that big)."""


def plan_range_bytes(stream: BinaryIO, paths: Sequence[tuple[str, ...]], target_bytes: int, limits: Limits,
                     cap: int | None = None) -> Iterator[RangeBytes]:
    """:func:`plan_ranges` over a stream that cannot be re-read at an offset (a zip member, a gzip
    file): each range comes with its bytes, so only about ``target_bytes`` of the stream (and one
    block) are held at a time. The items are cut with ``limits`` (``plain`` says whether any is
    over them). Raises :class:`RangeTooLarge` when more than ``cap`` bytes would be held."""
    keeper = _Keeper(stream, cap)
    for planned in plan_ranges(keeper, paths, target_bytes, limits):
        yield RangeBytes(planned.range, keeper.take(planned.range.start, planned.range.end), planned.seps, planned.plain)


def _grouped(items: Iterable[Item], target_bytes: int) -> Iterator[tuple[ItemRange, list[int], bool]]:
    """Consecutive items in ranges of about ``target_bytes``: each range, its items' ends and
    whether none of them is over the limits."""
    start = first = count = 0
    end = 0
    ends: list[int] = []
    plain = True
    for item in items:
        if count and item.end - start > target_bytes:
            yield ItemRange(start, end, first, count), ends, plain
            count, ends, plain = 0, [], True
        if not count:
            start, first = item.start, item.index
        end = item.end
        ends.append(end)
        plain = plain and not (item.too_deep or item.too_large)
        count += 1
    if count:
        yield ItemRange(start, end, first, count), ends, plain


class _Keeper(io.RawIOBase):
    """A stream read through, keeping what was read from the first byte not yet taken on."""

    def __init__(self, stream: BinaryIO, cap: int | None = None) -> None:
        self._stream = stream
        self._blocks: list[bytes] = []
        self._base = 0  # stream offset of the first kept byte
        self._held = 0
        self._cap = cap

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        block = self._stream.read(n)
        if block:
            self._blocks.append(block)
            self._held += len(block)
            if self._cap is not None and self._held > self._cap:
                raise RangeTooLarge(f"more than {self._cap:,} bytes for one range")
        return block

    def readinto(self, buffer) -> int:  # type: ignore[override]
        block = self.read(len(buffer))
        buffer[: len(block)] = block
        return len(block)

    def take(self, start: int, end: int) -> bytes:
        """Bytes ``start ..< end`` of the stream (read already); everything before ``end`` is let go."""
        joined = b"".join(self._blocks) if len(self._blocks) != 1 else self._blocks[0]
        data = joined[start - self._base : end - self._base]
        rest = joined[end - self._base :]
        self._blocks = [rest] if rest else []
        self._base = end
        self._held = len(rest)
        return data


def iter_range(stream: BinaryIO, item_range: ItemRange, limits: Limits = Limits()) -> Iterator[Item]:
    """The items of a range from :func:`plan_ranges`; ``stream`` is seekable (or already at its start)."""
    if stream.seekable():
        stream.seek(item_range.start)
    return iter_range_at(stream, item_range, limits)


def iter_range_bytes(data: bytes, item_range: ItemRange, limits: Limits = Limits()) -> Iterator[Item]:
    """The items of a range of :func:`plan_range_bytes`, from its bytes ``data``."""
    return iter_range_at(io.BytesIO(data), item_range, limits)


def iter_range_at(stream: BinaryIO, item_range: ItemRange, limits: Limits = Limits()) -> Iterator[Item]:
    """The items of a planned range from ``stream``, which is at the range's start."""
    return _range_items(stream, item_range, limits)


def iter_from(stream: BinaryIO, start: int, first_index: int, limits: Limits = Limits()) -> Iterator[Item]:
    """The items of a stream's record array from byte ``start`` (the start of item ``first_index``) on,
    the stream read from its beginning in the blocks a whole read (:func:`iter_items`) reads, so a
    stream that fails part-way fails where it would then, after the same items."""
    pos, head = 0, b""
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            break
        if pos + len(block) > start:
            head = block[start - pos :]
            break
        pos += len(block)
    rest = ItemRange(start, 1 << 62, first_index, 0)
    return _range_items(_Prefixed(head, stream), rest, limits)


class _Prefixed(io.RawIOBase):
    """``head``, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._stream.read(n)


def _range_items(stream: BinaryIO, item_range: ItemRange, limits: Limits) -> Iterator[Item]:
    splitter = _Splitter(stream, (), limits, keep=True, offset=item_range.start)
    splitter.index = item_range.first_index
    return splitter.items(in_range=item_range.end - item_range.start)


def check_depth(data: bytes, max_depth: int) -> bool:
    """True when the JSON text ``data`` nests deeper than ``max_depth`` (string-aware; fast reject first)."""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    scan = _Scan()
    for at in range(0, len(data), BLOCK_BYTES):
        _struct, _chars, depth_after = scan.block(data[at : at + BLOCK_BYTES])
        if len(depth_after) and int(depth_after.max()) > max_depth:
            return True
    return False


class _Scratch(threading.local):
    """Reused work buffers for the byte scans below: an 8 MB temporary made afresh for every chunk is
    mapped and faulted in page by page each time (as much system CPU as the scan itself)."""

    def __init__(self) -> None:
        self.flags = np.zeros(0, dtype=bool)
        self.bytes = np.zeros(0, dtype=np.uint8)

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.flags) < n:
            self.flags = np.zeros(n, dtype=bool)
            self.bytes = np.zeros(n, dtype=np.uint8)
        return self.flags[:n], self.bytes[:n]


_SCRATCH = _Scratch()


def positions_of(view: np.ndarray, byte: int) -> np.ndarray:
    """Where ``byte`` occurs in the uint8 array ``view`` (``np.flatnonzero(view == byte)`` without an
    array of the input's size allocated each time)."""
    flags, _ = _SCRATCH.take(len(view))
    np.equal(view, byte, out=flags)
    return np.flatnonzero(flags)


def count_brackets(view: np.ndarray) -> int:
    """How many ``[`` and ``{`` the uint8 array ``view`` holds (in strings too)."""
    flags, work = _SCRATCH.take(len(view))
    np.bitwise_and(view, np.uint8(0xDF), out=work)
    np.equal(work, 0x5B, out=flags)
    return int(np.count_nonzero(flags))


def lines_within(data: bytes, max_depth: int, max_line_bytes: int, ends: np.ndarray | None = None) -> bool:
    """True when every line of ``data`` (JSON Lines) is at most ``max_line_bytes`` long and nests at
    most ``max_depth`` deep. Vectorised: only a line with more than ``max_depth`` opening brackets is
    scanned exactly (string-aware). ``ends``: the positions of the newlines in ``data``, if known."""
    view = np.frombuffer(data, dtype=np.uint8)
    if ends is None:
        ends = positions_of(view, 0x0A)
    bounds = np.concatenate(([-1], ends, [len(view)]))
    if len(view) and int(np.diff(bounds).max()) - 1 > max_line_bytes:
        return False
    total = count_brackets(view)
    if total <= max_depth:
        return True
    # When every non-empty line starts with a bracket, each holds at least one, so none holds more
    # than the total less one per other line (the common case: one object a line, few brackets in text).
    starts = bounds[:-1] + 1
    starts = starts[starts < bounds[1:]]  # non-empty lines
    if len(starts) and bool(np.all((view[starts] & np.uint8(0xDF)) == 0x5B)) and total - (len(starts) - 1) <= max_depth:
        return True
    opens = np.flatnonzero((view & np.uint8(0xDF)) == 0x5B)
    per_line = np.bincount(np.searchsorted(ends, opens), minlength=len(ends) + 1)
    suspects = np.flatnonzero(per_line > max_depth).tolist()
    if not suspects:
        return True
    # One scan over the suspect lines together: a valid line ends at depth 0, so the deepest point
    # of the joined lines is the deepest of them (a broken line fails the columnar parse anyway).
    joined = b"\n".join(view[int(bounds[k]) + 1 : int(bounds[k + 1])].tobytes() for k in suspects)
    return not check_depth(joined, max_depth)


def items_of_bytes(data: bytes, paths: Sequence[tuple[str, ...]] = (), limits: Limits = Limits()) -> list[Item]:
    """:func:`iter_items` over bytes in memory (for tests and small inputs)."""
    return list(iter_items(io.BytesIO(data), paths, limits))
