"""The bulk path for conversation rows inside :func:`~kodolly.corridor.convert.convert_records`.

A converter with ``Converter.exchanges`` (sharegpt / kovicuna) yields each row as an *exchange* (its
conversation's merged turns, the user and assistant turn, the kept earlier turns, id and meta) instead
of a row dict. A :class:`Piece` gathers the exchanges of up to ``PIECE_ROWS`` rows and builds their
Arrow table in one go: every turn of the piece is one value of a string column, normalised in one call
(:func:`kodolly.normalize.normalize_column`: one RE2 match, ``normalize_text`` only on the
values it does not match) however many rows repeat it in their history; ``instruction``, ``response``
and the ``messages`` column are taken from that column by index; ``context`` is the transcript of the
normalised turns (:func:`kodolly.turns.transcript`). The result is the table, rejects included, that
``normalise_and_check`` and ``rows_to_table`` give for the same rows on the record path, which is
what runs when this path does not apply (:func:`piece_for`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ..converters import Context, Converter, loaded
from ..io.readers import Location
from ..normalize import normalize_column, normalize_text
from ..rows import MESSAGE_TYPE, MESSAGES_TYPE, dump_meta, repeat_string
from ..turns import LABELS, ROLES, SEPARATOR, transcript
from .chain import FilterChain
from .chunks import Chunk, reject_record
from .columnar import line_spans, read_lines, table_of
from .convert import convert_records, locate, required_reason
from .shards import Shard


def convert_lines(shard: Shard, data: Any, n_records: int, index: int, line_no: int | None, conv: Converter, ctx: Context,
                  category: str | None, chain: FilterChain, newlines: np.ndarray | None = None) -> Chunk | None:
    """JSON Lines ``data`` (as ``columnar._convert_lines`` takes it) parsed by pyarrow.json into the
    converter's records (``columnar_records``) and the column of their turn texts, normalised here in
    one call, then converted as the record path converts; None when the records are not of the plain
    shape or not valid UTF-8 (the record path parses them one by one)."""
    import orjson

    parsed = read_lines(data, n_records, newlines)
    if parsed is None:
        return None
    table, newlines = parsed
    view = np.frombuffer(data, dtype=np.uint8)
    lines, starts, ends = line_spans(view, newlines, n_records, 0 if line_no is None else line_no)
    first = 0 if line_no is None else line_no

    def load(i: int) -> Any:
        k = int(lines[i]) - first
        return orjson.loads(bytes(view[starts[k]:ends[k]]))

    # pyarrow.json lets invalid UTF-8 through: decoding the roles and ids raises on it, and so does
    # normalising the texts (the clean pattern matches valid UTF-8 only; the others are decoded)
    try:
        found = conv.columnar_records(table, load)
        if found is None:
            return None
        records, column = found
        normalised = normalize_column(column)
    except UnicodeDecodeError:
        return None
    name = shard.name
    if line_no is None:  # items of a JSON array: located by their index, as the record path locates them
        locs = [Location(name, index + i) for i in range(n_records)]
    else:
        locs = [Location(name, index + i, line) for i, line in enumerate(lines.tolist())]
    return convert_records(shard, zip(records, locs), conv, ctx, category, chain, column=(column, normalised))


def piece_for(conv: Converter, ctx: Context, category: str | None, chain: FilterChain, finish: bool,
              column: Any = None) -> "Piece | None":
    """A piece to gather the converter's exchanges in, or None when the record path runs: the converter
    has no ``exchanges``, the shard combines records (``finish``: those rows are dicts), or the chain's map
    half needs row dicts."""
    if conv.exchanges is None or finish or not chain.columnar_ok:
        return None
    return Piece(ctx, category, column)


ROLE_CODES = {role: code for code, role in enumerate(ROLES)}


class Piece:
    """The exchanges of one piece of a shard, built into rows in bulk by :meth:`table`.

    Its text column is the turns' texts: ``column`` (a column of the shard's texts that turns index
    on the columnar path) followed by the merged and record-path texts gathered in ``extra``."""

    def __init__(self, ctx: Context, category: str | None, column: Any = None) -> None:
        self.source, self.license, self.category = ctx.source, ctx.license, category
        self.column, self.normalised = column if column is not None else (None, None)  # (raw, normalised) texts
        self._clear()

    def _clear(self) -> None:
        self.extra: list[str] = []  # texts not in ``column``, each once
        self.user: list[int] = []  # per row: the user turn's text (>= 0: in column; < 0: extra[-1 - i])
        self.assistant: list[int] = []
        self.history: list[int] = []  # per row, flat: the kept earlier turns' texts
        self.roles: list[int] = []  # ... and their roles (ROLE_CODES)
        self.offsets: list[int] = [0]  # row r's history is history[offsets[r]:offsets[r + 1]]
        self.dropped: list[int] = []
        self.ids: list[str] = []
        self.metas: list[str] = []
        self.categories: list[str] = []
        self.records: list[Any] = []  # the source record of each row (the raw of its reject, if any)
        self.locs: list[Location] = []
        self._turns: Any = None  # the turns of the conversation added last, and where their texts are
        self._at: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def _text(self, turn: Any) -> int:
        at = self._at.get(turn.pos)
        if at is None:
            if turn.source is not None and turn.source.column is self.column and len(turn.texts) == 1:
                at = turn.texts[0]
            else:
                self.extra.append(turn.text)
                at = -len(self.extra)
            self._at[turn.pos] = at
        return at

    def add(self, exchange: Any, loc: Location, record: Any) -> None:
        """One exchange that becomes a row (normalised and checked in :meth:`table`)."""
        if exchange.turns is not self._turns:  # a new conversation
            self._turns, self._at = exchange.turns, {}
        text = self._text
        self.user.append(text(exchange.user))
        self.assistant.append(text(exchange.assistant))
        self.history.extend([text(turn) for turn in exchange.history])
        self.roles.extend([ROLE_CODES[turn.role] for turn in exchange.history])
        self.offsets.append(len(self.history))
        self.dropped.append(exchange.dropped)
        self.ids.append(exchange.id)
        meta = exchange.meta
        locate(meta, loc)
        self.metas.append(dump_meta(meta))
        self.categories.append(exchange.category)
        self.records.append(record)
        self.locs.append(loc)

    def table(self, items: np.ndarray) -> tuple[pa.Table, np.ndarray, list[tuple[int, dict[str, Any]]]]:
        """The rows as an Arrow table, the mask of the rows kept in it, and the ``(item, reject)`` of the
        others (``empty_field:...`` once normalised, as ``normalise_and_check`` says); the piece is then empty."""
        import pyarrow.compute as pc

        n = len(self)
        base = len(self.column) if self.column is not None else 0
        parts = ([self.normalised] if base else []) + ([normalize_column(pa.array(self.extra, pa.string()))] if self.extra else [])
        normalised = pa.concat_arrays(parts) if len(parts) > 1 else parts[0] if parts else pa.array([], pa.string())
        filled = pc.greater(pc.binary_length(normalised), 0).to_numpy(zero_copy_only=False)

        def places(at: list[int]) -> np.ndarray:  # extra[-1 - i] is at base - 1 - i
            a = np.array(at, np.int64)
            return np.where(a < 0, base - 1 - a, a)

        user, assistant, history = places(self.user), places(self.assistant), places(self.history)
        keep = filled[user] & filled[assistant]
        rejects = []
        for r in np.flatnonzero(~keep).tolist():
            reason = required_reason({"instruction": filled[user[r]], "response": filled[assistant[r]]})
            rejects.append((int(items[r]), reject_record(reason, self.source, self.locs[r], raw=loaded(self.records[r]),
                                                         row_id=self.ids[r])))

        # messages: the kept earlier turns that have text once normalised
        with_text = filled[history] if len(history) else np.zeros(0, bool)
        counts = np.concatenate(([0], np.cumsum(with_text, dtype=np.int64)))
        offsets = counts[np.array(self.offsets, np.int64)]
        turns, roles = history[with_text], np.array(self.roles, np.int8)[with_text]
        contents = normalised.take(turns)
        built = {
            "instruction": normalised.take(user),
            "context": self._contexts(contents, roles, offsets),
            "response": normalised.take(assistant),
            "category": pa.array([self.category] * n if self.category is not None else self.categories, pa.string()),
            "source": repeat_string(self.source, n),
            "id": pa.array(self.ids, pa.string()),
            "license": repeat_string(self.license, n),
            "meta": pa.array(self.metas, pa.string()),
        }
        if len(turns):
            items_ = pa.StructArray.from_arrays([pa.array(ROLES, pa.string()).take(pa.array(roles)), contents], fields=list(MESSAGE_TYPE))
            built["messages"] = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items_, type=MESSAGES_TYPE)
        table = table_of(built, n)
        if not keep.all():
            table = table.filter(pa.array(keep))
        self._clear()
        return table, keep, rejects

    def _contexts(self, contents: Any, roles: np.ndarray, offsets: np.ndarray) -> Any:
        """Each row's context: :func:`kodolly.turns.transcript` of its messages (``contents`` / ``roles``
        from ``offsets``) and its dropped turns, built as Arrow columns; when the row had no earlier turn
        at all, its context (empty, or the marker alone) is normalised, as ``normalise_and_check`` does."""
        import pyarrow.compute as pc

        labels = pa.array([LABELS[role] for role in ROLES], pa.string()).take(pa.array(roles))
        paragraphs = pc.binary_join_element_wise(labels, contents, ": ")
        markers: dict[tuple[int, bool], int] = {}  # (turns dropped, normalised) -> its place after the paragraphs
        marker_texts: list[str] = []
        flat: list[int] = []
        ends = [0]
        raw_offsets = self.offsets
        n_paragraphs = len(paragraphs)
        for r, dropped in enumerate(self.dropped):
            a, b = int(offsets[r]), int(offsets[r + 1])
            if dropped:
                alone = raw_offsets[r] == raw_offsets[r + 1]
                key = (dropped, alone)
                m = markers.get(key)
                if m is None:
                    text = transcript([], dropped)
                    m = markers[key] = n_paragraphs + len(marker_texts)
                    marker_texts.append(normalize_text(text) if alone else text)
                at = a + 1 if b > a and roles[a] == ROLE_CODES["system"] else a
                flat.extend(range(a, at))
                flat.append(m)
                flat.extend(range(at, b))
            else:
                flat.extend(range(a, b))
            ends.append(len(flat))
        if marker_texts:
            paragraphs = pa.concat_arrays([paragraphs, pa.array(marker_texts, pa.string())])
        lists = pa.ListArray.from_arrays(pa.array(ends, pa.int32()), paragraphs.take(pa.array(flat, pa.int64())))
        return pc.binary_join(lists, SEPARATOR)

