"""The bulk path for conversation rows inside :func:`~kodolly.corridor.convert.convert_records`.

A converter with ``Converter.exchanges`` (sharegpt / kovicuna) yields each row as an *exchange* (its
conversation's merged turns, the user and assistant turn, the kept earlier turns, id and meta) instead
of a row dict. A :class:`Piece` gathers the exchanges of up to ``PIECE_ROWS`` rows and builds their
Arrow table in one go: every turn of the piece is one value of a string column, normalised in one call
(:func:`kodolly.corridor.columnar.normalise_dirty`: one RE2 match, ``normalize_text`` only on the
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

from ..converters import Context, Converter
from ..io.readers import Location
from ..normalize import normalize_text
from ..rows import ARROW_SCHEMA, MESSAGE_TYPE, MESSAGES_TYPE, dump_meta, repeat_string
from ..turns import transcript
from .chain import FilterChain
from .chunks import reject_record
from .columnar import normalise_dirty, schema_column
from .convert import locate, required_reason


def piece_for(conv: Converter, ctx: Context, category: str | None, chain: FilterChain, finish: bool) -> "Piece | None":
    """A piece to gather the converter's exchanges in, or None when the record path runs: the converter
    has no ``exchanges``, combines records (``finish``: those rows are dicts), or the chain's map half
    needs row dicts."""
    if conv.exchanges is None or (finish and conv.finish is not None) or not chain.columnar_ok:
        return None
    return Piece(ctx, category)


class Piece:
    """The exchanges of one piece of a shard, built into rows in bulk by :meth:`table`."""

    def __init__(self, ctx: Context, category: str | None) -> None:
        self.source, self.license, self.category = ctx.source, ctx.license, category
        self._clear()

    def _clear(self) -> None:
        self.texts: list[str] = []  # the raw text of every turn of the piece's conversations, once
        self.roles: list[str] = []
        self.user: list[int] = []  # per row: the user turn's place in ``texts``
        self.assistant: list[int] = []
        self.history: list[int] = []  # per row, flat: the kept earlier turns' places in ``texts``
        self.offsets: list[int] = [0]  # row r's history is history[offsets[r]:offsets[r + 1]]
        self.dropped: list[int] = []
        self.ids: list[str] = []
        self.metas: list[str] = []
        self.categories: list[str] = []
        self.records: list[Any] = []  # the source record of each row (the raw of its reject, if any)
        self.locs: list[Location] = []
        self._turns: Any = None  # the turns list of the conversation added last, and where it starts in texts
        self._base = 0

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, exchange: Any, loc: Location, record: Any) -> None:
        """One exchange that becomes a row (normalised and checked in :meth:`table`)."""
        if exchange.turns is not self._turns:  # a new conversation: its turns go into the text column once
            self._turns, self._base = exchange.turns, len(self.texts)
            for turn in exchange.turns:
                self.texts.append(turn.text if turn.texts else "")
                self.roles.append(turn.role)
        base = self._base
        self.user.append(base + exchange.user.pos)
        self.assistant.append(base + exchange.assistant.pos)
        self.history.extend([base + turn.pos for turn in exchange.history])
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
        raw = pa.array(self.texts, pa.string())
        dirty, fixed = normalise_dirty(raw)
        texts = self.texts  # normalised, as Python strings (the clean ones are the raw ones)
        normalised = raw
        if dirty is not None:
            texts = list(texts)
            for i, text in zip(np.flatnonzero(dirty.to_numpy(zero_copy_only=False)).tolist(), fixed):
                texts[i] = text
            normalised = pc.replace_with_mask(raw, dirty, pa.array(fixed, pa.string()))
        filled = np.fromiter((bool(t) for t in texts), bool, len(texts))
        user, assistant = np.array(self.user, np.int64), np.array(self.assistant, np.int64)

        keep = filled[user] & filled[assistant]
        rejects = []
        for r in np.flatnonzero(~keep).tolist():
            reason = required_reason({"instruction": texts[user[r]], "response": texts[assistant[r]]})
            rejects.append((int(items[r]), reject_record(reason, self.source, self.locs[r], raw=self.records[r], row_id=self.ids[r])))

        # context: the transcript of the normalised earlier turns (empty ones left out), as normalise_and_check makes it
        history, offsets, dropped = self.history, self.offsets, self.dropped
        messages: dict[int, dict[str, str]] = {}
        contexts = []
        for r in range(n):
            a, b = offsets[r], offsets[r + 1]
            if a == b:  # no earlier turn: the context is empty, or the marker of the turns left out
                contexts.append(normalize_text(transcript([], dropped[r])) if dropped[r] else "")
                continue
            kept = []
            for i in history[a:b]:
                if texts[i]:
                    m = messages.get(i)
                    if m is None:
                        m = messages[i] = {"role": self.roles[i], "content": texts[i]}
                    kept.append(m)
            contexts.append(transcript(kept, dropped[r]))

        flat = np.array(history, np.int64)
        if len(flat):
            with_text = filled[flat]
            counts = np.concatenate(([0], np.cumsum(with_text, dtype=np.int64)))
            flat = flat[with_text]
            turns = pa.StructArray.from_arrays([pa.array(self.roles, pa.string()).take(flat), normalised.take(flat)],
                                               fields=list(MESSAGE_TYPE))
            column = pa.ListArray.from_arrays(pa.array(counts[np.array(offsets, np.int64)], pa.int32()), turns, type=MESSAGES_TYPE)
        else:
            column = None  # schema_column: no earlier turns
        categories = [self.category] * n if self.category is not None else self.categories
        built = {
            "instruction": normalised.take(user),
            "context": pa.array(contexts, pa.string()),
            "response": normalised.take(assistant),
            "category": pa.array(categories, pa.string()),
            "source": repeat_string(self.source, n),
            "id": pa.array(self.ids, pa.string()),
            "license": repeat_string(self.license, n),
            "meta": pa.array(self.metas, pa.string()),
        }
        if column is not None:
            built["messages"] = column
        table = pa.Table.from_arrays([schema_column(built, f, n) for f in ARROW_SCHEMA], schema=ARROW_SCHEMA)
        if not keep.all():
            table = table.filter(pa.array(keep))
        self._clear()
        return table, keep, rejects
