"""DPO rows in the three layouts, and their writer (parquet, JSONL, ``datasets`` folder).

Layouts (provenance ``source``, ``id`` and ``split`` — when the input has it — are kept in every one):

``dolly``               the input's Dolly columns (instruction, context, response, category, source, id,
                        domain, score, license, meta; those present) + ``split`` + ``rejected``
``trl``                 ``prompt`` / ``chosen`` / ``rejected`` plain strings
``trl-conversational``  ``prompt`` = ``[{"role": "user", "content": ...}]``, ``chosen`` / ``rejected`` =
                        ``[{"role": "assistant", "content": ...}]``; a conversation row's prompt is its
                        system message, earlier turns and last user turn (:func:`kodolly.turns.conversation_prompt`)

The trl prompt is the instruction, followed by a blank line and the context when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ..io.writers import describe_output, naming_errors, save_parquet_as_datasets_folder
from ..rows import ARROW_SCHEMA
from ..turns import conversation_prompt

LAYOUTS = ("dolly", "trl", "trl-conversational")
_MESSAGE = pa.list_(pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())]))


def prompt_text(row: dict[str, Any]) -> str:
    instruction = row.get("instruction") or ""
    context = row.get("context") or ""
    return f"{instruction}\n\n{context}" if context else instruction


def layout_schema(layout: str, columns: Sequence[str]) -> pa.Schema:
    """The Arrow schema of the output, given the input's column names."""
    has_split = "split" in columns
    if layout == "dolly":
        fields = [f for f in ARROW_SCHEMA if f.name in columns and f.name != "split"]
        if has_split:
            fields.append(pa.field("split", pa.string()))
        fields.append(pa.field("rejected", pa.string(), nullable=False))
        return pa.schema(fields)
    text = pa.string() if layout == "trl" else _MESSAGE
    fields = [pa.field("prompt", text), pa.field("chosen", text), pa.field("rejected", text)]
    fields += [pa.field("source", pa.string()), pa.field("id", pa.string())]
    if has_split:
        fields.append(pa.field("split", pa.string()))
    return pa.schema(fields)


def make_pair(row: dict[str, Any], chosen: str, rejected: str, layout: str, schema: pa.Schema, *, row_id: str | None = None) -> dict[str, Any]:
    """One output row. ``chosen`` replaces the response in the dolly layout (ranked pairs)."""
    rid = row_id if row_id is not None else row.get("id", "")
    if layout == "dolly":
        out = {name: row.get(name) for name in schema.names if name != "rejected"}
        out["response"] = chosen
        out["id"] = rid
        if isinstance(out.get("meta"), dict):
            out["meta"] = orjson.dumps(out["meta"]).decode()
        out["rejected"] = rejected
        return out
    prompt = prompt_text(row)
    if layout == "trl":
        out = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    else:
        out = {
            "prompt": conversation_prompt(row) or [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
    out["source"] = row.get("source", "")
    out["id"] = rid
    if "split" in schema.names:
        out["split"] = row.get("split") or "train"
    return out


class DpoWriter:
    """Writes DPO rows in ``fmt`` to ``path`` (a temporary path of the build's output set; ``name`` is the
    final path, for messages; a ``datasets`` folder is built at :meth:`close` from a parquet file written to
    ``scratch``); :meth:`close` returns its description for the manifest. :meth:`abort` closes quietly;
    the output set removes the temporaries."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema, *, name: Path | None = None, scratch: Path | None = None) -> None:
        self.path = path
        self.name = name if name is not None else path
        self.fmt = fmt
        self.schema = schema
        self.rows = 0
        self._parquet_path = (scratch if scratch is not None else path.with_name(path.name + ".parquet.tmp")) if fmt == "datasets" else None
        target = self._parquet_path or path
        self._fh = None
        self._pq = None
        with naming_errors(self.name):
            if fmt == "jsonl":
                self._fh = open(target, "wb")
            else:
                self._pq = pq.ParquetWriter(target, schema, compression="zstd")

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with naming_errors(self.name):
            if self._fh is not None:
                self._fh.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))
            else:
                self._pq.write_table(pa.Table.from_pylist(rows, schema=self.schema))
        self.rows += len(rows)

    def close(self) -> list[dict[str, Any]]:
        """Finish the file or folder; returns ``[description]`` (final name, rows, bytes, hashes)."""
        with naming_errors(self.name):
            if self._fh is not None:
                self._fh.close()
            else:
                self._pq.close()
            if self._parquet_path is not None:
                try:
                    save_parquet_as_datasets_folder(self._parquet_path, self.path, self.schema)
                finally:
                    self._parquet_path.unlink(missing_ok=True)
        return [describe_output(self.path, self.rows, name=self.name)]

    def abort(self) -> None:
        for closable in (self._fh, self._pq):
            if closable is not None:
                try:
                    closable.close()
                except BaseException:  # a half-written row group or a full disk: the file is removed anyway
                    pass
        if self._parquet_path is not None:
            self._parquet_path.unlink(missing_ok=True)
