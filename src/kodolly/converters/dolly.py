"""Dolly and Korean Dolly (databricks-dolly-15k and its translations): checked and normalised.

``{instruction, context, response, category}`` with an optional ``id``. ``category`` must be one of
Dolly's eight task types; anything else is rejected as ``bad_value:category`` (a subject area in
``category`` is a common mistake in hand-made files). A missing ``context`` is ``""``.

kodolly's own outputs are Dolly rows too: a record that carries kodolly's provenance columns keeps
its ``source``, ``domain``, ``score``, ``license`` (unless ``-O license=...`` is given) and
``meta`` (a JSON string or an object); where it was read before is kept in ``meta.origin``.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from ..io.readers import Location
from ..rows import DOLLY_CATEGORIES, make_row
from . import Context, Converter, Reject, text_field


def convert(record: Any, loc: Location, ctx: Context) -> Iterator[dict[str, Any] | Reject]:
    if not isinstance(record, dict):
        yield Reject("bad_type:record", f"expected an object, got {type(record).__name__}")
        return
    fields = {}
    for key, required in (("instruction", True), ("context", False), ("response", True), ("category", False)):
        value = text_field(record, key, required=required)
        if isinstance(value, Reject):
            yield value
            return
        fields[key] = value
    category = fields["category"].strip() or "open_qa"
    if category not in DOLLY_CATEGORIES:
        yield Reject("bad_value:category", f"{category!r} is not a Dolly task type")
        return
    rid = record.get("id")
    kept = _provenance(record, ctx)
    if isinstance(kept, Reject):
        yield kept
        return
    yield make_row(
        instruction=fields["instruction"],
        context=fields["context"],
        response=fields["response"],
        category=category,
        id=str(rid) if rid not in (None, "") else ctx.derived_id(loc),
        **kept,
    )


_LOCATION_KEYS = ("file", "line", "index")


def _provenance(record: dict[str, Any], ctx: Context) -> dict[str, Any] | Reject:
    """``source``, ``domain``, ``score``, ``license`` and ``meta`` of a record that has them (a
    kodolly row read back), else this converter's."""
    out: dict[str, Any] = {"source": ctx.source, "license": ctx.license, "domain": "", "score": None, "meta": {}}
    for key in ("source", "domain", "license"):
        value = record.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            return Reject(f"bad_type:{key}", f"expected text, got {type(value).__name__}")
        out[key] = value
    if ctx.options.get("license") not in (None, "", CONVERTER.options["license"]):
        out["license"] = ctx.license  # the user named the licence: it wins over the rows'
    score = record.get("score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            return Reject("bad_type:score", f"expected a number, got {type(score).__name__}")
        out["score"] = float(score)
    meta = record.get("meta")
    if isinstance(meta, str) and meta.strip():
        try:
            meta = orjson.loads(meta)
        except orjson.JSONDecodeError:
            return Reject("bad_json:meta", "meta is not a JSON object")
    if meta in (None, ""):
        meta = {}
    if not isinstance(meta, dict):
        return Reject("bad_type:meta", f"expected an object, got {type(meta).__name__}")
    meta = dict(meta)
    origin = {key: meta.pop(key) for key in _LOCATION_KEYS if key in meta}
    if origin:
        meta["origin"] = origin
    out["meta"] = meta
    return out


def detect(record: Any) -> float:
    if isinstance(record, dict) and {"instruction", "response"} <= set(record):
        return 1.0 if "category" in record else 0.7
    return 0.0


def convert_columns(table: Any, ctx: Context) -> dict[str, Any] | None:
    """The columnar fast path (see ``Converter.columnar``) for ``{instruction, context, response,
    category}`` without ids; declines anything else (then :func:`convert` runs record by record)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(table.column_names)
    if not {"instruction", "response"} <= names or not names <= {"instruction", "context", "response", "category"}:
        return None
    columns: dict[str, Any] = {}
    for key, required in (("instruction", True), ("context", False), ("response", True), ("category", False)):
        if key not in names or pa.types.is_null(table.column(key).type):
            if required:
                return None
            columns[key] = pa.array([""] * len(table), pa.string())
            continue
        column = table.column(key)
        if not pa.types.is_string(column.type) or (required and column.null_count):
            return None
        columns[key] = pc.fill_null(column, "") if column.null_count else column
    # category: stripped, "" -> open_qa, anything not a Dolly task type -> decline (rejected one by one)
    raw = columns["category"]
    values = pc.unique(raw).to_pylist()
    mapping = {v: (v.strip() or "open_qa") for v in values}
    if any(m not in DOLLY_CATEGORIES for m in mapping.values()):
        return None
    if all(v == m for v, m in mapping.items()):
        category = raw
    else:
        category = pa.array([mapping[v] for v in raw.to_pylist()], pa.string())
    return {"instruction": columns["instruction"], "context": columns["context"], "response": columns["response"], "category": category}


CONVERTER = Converter(
    name="dolly",
    description="Dolly and Korean Dolly JSONL (instruction, context, response, category), checked",
    convert=convert,
    license="CC BY-SA 3.0",
    aliases=("dolly-ko",),
    detect=detect,
    options={"license": "CC BY-SA 3.0"},
    columnar=convert_columns,
)
