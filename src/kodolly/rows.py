"""The Dolly row: the one place a row's fields, their types and their Arrow schema are defined.

A row is a plain ``dict`` (fast to build a million times) with exactly the keys in ``ROW_FIELDS``:

=============  ==========================================================================
instruction    the user's request (non-empty)
context        supporting text, ``""`` when none
response       the answer (non-empty)
category       a Dolly task type (``DOLLY_CATEGORIES``)
source         the converter / dataset name, e.g. ``korquad1``
id             the source's own id where it has one, else derived from the record's place
domain         the source's subject label (AI Hub ``data_category.middle``), else ``""``
score          the source's quality score where it has one, else ``None``
license        the licence of the source where known, else ``""``
meta           a JSON object (title, url, turn, file and line, ...): a ``dict`` in Python,
               a JSON string once written
messages       the earlier turns of a conversation row, a list of ``{role, content}`` (role
               ``system`` / ``user`` / ``assistant``); ``[]`` for single-turn sources. ``context``
               is derived from it (:func:`kodolly.turns.transcript`) so the two always agree
=============  ==========================================================================

Written rows also carry ``split`` (``train`` / ``validation`` / ``test``), set by the split step
(:mod:`kodolly.splits`). A run without a split configuration writes ``"train"`` for every row, so
every kodolly output has the same columns; readers accept the column absent too (absent = train).

``meta`` is stored as a JSON string, not an Arrow struct, so rows from different sources
(with different meta keys) share one schema and load unchanged in ``datasets``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

DOLLY_FIELDS: tuple[str, ...] = ("instruction", "context", "response", "category")
PROVENANCE_FIELDS: tuple[str, ...] = ("source", "id", "domain", "score", "license", "meta")
MESSAGES_FIELD = "messages"
ROW_FIELDS: tuple[str, ...] = DOLLY_FIELDS + PROVENANCE_FIELDS + (MESSAGES_FIELD,)
SPLIT_FIELD = "split"
SPLITS: tuple[str, ...] = ("train", "validation", "test")
DEFAULT_SPLIT = "train"

DOLLY_CATEGORIES: frozenset[str] = frozenset(
    {
        "open_qa",
        "closed_qa",
        "general_qa",
        "classification",
        "brainstorming",
        "information_extraction",
        "summarization",
        "creative_writing",
    }
)

MESSAGE_TYPE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)

ARROW_SCHEMA = pa.schema(
    [
        pa.field("instruction", pa.string(), nullable=False),
        pa.field("context", pa.string(), nullable=False),
        pa.field("response", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=True),
        pa.field("license", pa.string(), nullable=False),
        pa.field("meta", pa.string(), nullable=False),
        pa.field(MESSAGES_FIELD, MESSAGES_TYPE, nullable=False),
        pa.field(SPLIT_FIELD, pa.string(), nullable=False),
    ]
)

DOLLY_ARROW_SCHEMA = pa.schema([ARROW_SCHEMA.field(name) for name in DOLLY_FIELDS])


def make_row(
    *,
    instruction: str,
    response: str,
    context: str = "",
    category: str = "open_qa",
    source: str,
    id: str,
    domain: str = "",
    score: float | None = None,
    license: str = "",
    meta: dict[str, Any] | None = None,
    messages: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Build a row with every field present (``split`` is ``"train"`` until a split step sets it)."""
    return {
        "instruction": instruction,
        "context": context,
        "response": response,
        "category": category,
        "source": source,
        "id": id,
        "domain": domain,
        "score": score,
        "license": license,
        "meta": meta if meta is not None else {},
        MESSAGES_FIELD: messages if messages is not None else [],
        SPLIT_FIELD: DEFAULT_SPLIT,
    }


def dump_meta(meta: dict[str, Any] | None) -> str:
    if not meta:
        return "{}"
    return orjson.dumps(meta).decode()


def load_meta(row: dict[str, Any]) -> dict[str, Any]:
    """The row's ``meta`` as a dict, whether the row is in memory (dict) or read back (JSON string)."""
    meta = row.get("meta")
    if isinstance(meta, dict):
        return meta
    return orjson.loads(meta) if meta else {}


def rows_to_table(rows: list[dict[str, Any]], *, dolly_only: bool = False) -> pa.Table:
    """A batch of rows as an Arrow table in the canonical column order."""
    schema = DOLLY_ARROW_SCHEMA if dolly_only else ARROW_SCHEMA
    columns = [
        [dump_meta(row["meta"]) if isinstance(row["meta"], dict) else row["meta"] for row in rows]
        if name == "meta"
        else [row.get(SPLIT_FIELD) or DEFAULT_SPLIT for row in rows]
        if name == SPLIT_FIELD
        else [row.get(MESSAGES_FIELD) or [] for row in rows]
        if name == MESSAGES_FIELD
        else [row[name] for row in rows]
        for name in schema.names
    ]
    return pa.Table.from_arrays(
        [_array(col, field.type) for col, field in zip(columns, schema)], schema=schema
    )


def repeat_string(value: str, n: int) -> pa.Array:
    """A string column of ``n`` copies of ``value``, built from its buffers (``pa.repeat`` of a string
    scalar costs about a microsecond a row)."""
    import numpy as np

    data = value.encode("utf-8")
    width = len(data)
    if width * n >= 1 << 31:
        return pa.array([value] * n, pa.string())
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32) if width else np.zeros(n + 1, np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))


def no_messages(n: int) -> pa.Array:
    """A ``messages`` column of ``n`` empty lists (single-turn rows), without building ``n`` Python lists."""
    offsets = pa.repeat(pa.scalar(0, pa.int32()), n + 1)
    return pa.ListArray.from_arrays(offsets, pa.array([], MESSAGE_TYPE), type=MESSAGES_TYPE)


def messages_array(col: list[list[dict[str, str]]]) -> pa.Array:
    """A ``messages`` column from lists of ``{role, content}`` (built from flat columns: no per-dict conversion)."""
    if not any(col):
        return no_messages(len(col))
    offsets, roles, contents = [0], [], []
    for msgs in col:
        for m in msgs:
            roles.append(m["role"])
            contents.append(m["content"])
        offsets.append(len(roles))
    items = pa.StructArray.from_arrays([pa.array(roles, pa.string()), pa.array(contents, pa.string())],
                                       fields=list(MESSAGE_TYPE))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items, type=MESSAGES_TYPE)


def _array(col: list[Any], type: pa.DataType) -> pa.Array:
    return messages_array(col) if type == MESSAGES_TYPE else pa.array(col, type=type)
