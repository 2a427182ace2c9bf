"""The Alpaca family: Alpaca, KoAlpaca v1.0/v1.1, KULLM v2 and evaluation files, look-alikes.

Shapes read (FORMATS.md "Alpaca family"):

- ``{instruction, input, output}`` (KoAlpaca v1.0; ``input`` often empty)
- ``{instruction, output, url}`` (KoAlpaca v1.1: no ``input`` key; ``url`` kept in ``meta``)
- ``{id, instruction, input, output}`` (KULLM v2)
- ``{id, motivation_app, instruction, instances: [{input, output}, ...]}`` (KULLM evaluation):
  one row per instance
- ``{id2, prompt, chosen, rejected}`` (preference look-alikes): ``prompt`` is the instruction,
  ``chosen`` the response, ``rejected`` kept in ``meta`` for preference building

A missing ``input`` is ``""``. Misspelled id keys (``id2``, ``idx``, ``ID``) are taken as the id.
``input`` becomes the row's ``context``.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..io.readers import Location
from ..rows import make_row
from . import Context, Converter, Reject, text_field

ID_KEYS = ("id", "idx", "id2", "ID", "Id", "data_id", "_id")
META_KEYS = ("url", "motivation_app", "title", "source")


def _record_id(record: dict[str, Any], loc: Location, ctx: Context) -> str:
    for key in ID_KEYS:
        value = record.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return ctx.derived_id(loc)


def convert(record: Any, loc: Location, ctx: Context) -> Iterator[dict[str, Any] | Reject]:
    if not isinstance(record, dict):
        yield Reject("bad_type:record", f"expected an object, got {type(record).__name__}")
        return
    meta = {key: record[key] for key in META_KEYS if isinstance(record.get(key), str) and record[key]}
    rid = _record_id(record, loc, ctx)
    instruction_key = "instruction" if "instruction" in record or "prompt" not in record else "prompt"
    instruction = text_field(record, instruction_key)
    if isinstance(instruction, Reject):
        yield instruction
        return

    if "instances" in record:
        instances = record["instances"]
        if not isinstance(instances, list) or not instances:
            yield Reject("bad_type:instances", "expected a non-empty list of {input, output}")
            return
        for n, instance in enumerate(instances):
            if not isinstance(instance, dict):
                yield Reject("bad_type:instances", f"instance {n} is not an object", part=str(n), raw=instance)
                continue
            yield from _one(instance, instruction, f"{rid}:{n}" if len(instances) > 1 else rid, ctx, meta, str(n))
        return

    if "chosen" in record and "output" not in record:
        rejected = text_field(record, "rejected", required=False)
        if isinstance(rejected, str) and rejected:
            meta["rejected"] = rejected
        yield from _one(record, instruction, rid, ctx, meta, "", response_key="chosen")
        return
    yield from _one(record, instruction, rid, ctx, meta, "")


def _one(
    fields: dict[str, Any],
    instruction: str,
    rid: str,
    ctx: Context,
    meta: dict[str, Any],
    part: str,
    response_key: str = "output",
) -> Iterator[dict[str, Any] | Reject]:
    context = text_field(fields, "input", required=False)
    response = text_field(fields, response_key)
    for value in (context, response):
        if isinstance(value, Reject):
            yield Reject(value.reason, value.detail, part=part)
            return
    yield make_row(
        instruction=instruction,
        context=context,  # type: ignore[arg-type]
        response=response,  # type: ignore[arg-type]
        category=category_for(context),  # type: ignore[arg-type]
        source=ctx.source,
        id=rid,
        license=ctx.license,
        meta=meta,
    )


def category_for(context: str) -> str:
    """kodolly's one default: ``closed_qa`` when the row comes with a context (Alpaca's ``input``),
    ``open_qa`` when it has none (layouts and KorQuAD follow the same rule)."""
    return "closed_qa" if context.strip() else "open_qa"


def detect(record: Any) -> float:
    if not isinstance(record, dict):
        return 0.0
    keys = set(record)
    if "instruction" in keys and ("output" in keys or "instances" in keys):
        return 0.9 if "response" not in keys else 0.3
    if {"prompt", "chosen", "rejected"} <= keys:
        # plain strings only: trl's conversational layout (lists of messages) is not this shape
        return 0.8 if all(isinstance(record[k], str) for k in ("prompt", "chosen", "rejected")) else 0.0
    return 0.0


_COLUMNAR_FIELDS = frozenset({"instruction", "input", "output"})


def convert_columns(table: Any, ctx: Context) -> dict[str, Any] | None:
    """The columnar fast path (see ``Converter.columnar``) for plain ``{instruction, input, output}``.

    Declines anything else (ids, url, prompt/chosen, instances, non-string or null values), which
    then goes through :func:`convert` record by record.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(table.column_names)
    if not {"instruction", "output"} <= names or not names <= _COLUMNAR_FIELDS:
        return None
    instruction, output = table.column("instruction"), table.column("output")
    for column in (instruction, output):
        if not pa.types.is_string(column.type) or column.null_count:
            return None
    if "input" in names:
        context = table.column("input")
        if pa.types.is_null(context.type):
            context = pa.chunked_array([pa.array([""] * len(table), pa.string())])
        elif not pa.types.is_string(context.type):
            return None
        elif context.null_count:
            context = pc.fill_null(context, "")
    else:
        context = pa.chunked_array([pa.array([""] * len(table), pa.string())])
    has_context = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(context)), 0)
    category = pc.if_else(has_context, pa.scalar("closed_qa"), pa.scalar("open_qa"))
    return {"instruction": instruction, "context": context, "response": output, "category": category}


CONVERTER = Converter(
    name="alpaca",
    description="Alpaca family: KoAlpaca v1.0/v1.1, KULLM (incl. nested instances), prompt/chosen/rejected look-alikes",
    convert=convert,
    license="",
    aliases=("koalpaca", "kullm"),
    detect=detect,
    options={"license": ""},
    columnar=convert_columns,
)
