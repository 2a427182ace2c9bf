"""``kodolly export``: a kodolly output as the plain files LLaMA-Factory and axolotl train from.

Each target reads its own column layout; :func:`export` writes that layout (JSONL or parquet,
from the destination's suffix) and returns the configuration that points the trainer at it:

================  =========================================  ============================================
style             LLaMA-Factory (``dataset_info.json``)      axolotl (``datasets:`` YAML)
================  =========================================  ============================================
``alpaca``        instruction / input / output (/ system)    instruction / input / output, ``type: alpaca``
``chat``          sharegpt: ``conversations`` [{from,value}]  ``messages`` [{role,content}],
                  (/ ``system``)                              ``type: chat_template``
``preference``    instruction / input / chosen / rejected     ``messages`` + ``chosen``/``rejected`` as
                  (/ system), ``ranking: true``               {role,content}, ``type: chat_template.default``
================  =========================================  ============================================

Input rows are Dolly rows (instruction, context, response) or DPO rows in any kodolly layout
(Dolly fields + ``rejected``; trl ``prompt``/``chosen``/``rejected`` as strings or as
conversations). With a ``split`` column only ``--split`` rows are exported (default ``train``);
without one every row counts as ``train``. For LLaMA-Factory the entry is also written into
``dataset_info.json`` beside the export (merged with entries already there); the axolotl config names
the file by its absolute path.

Conversations (Dolly rows with earlier turns in ``messages``, trl prompts that are message lists)
export as real turns, made strictly alternating by :func:`kodolly.turns.chat`: sharegpt
``conversations`` with the system text in a ``system`` column; alpaca layouts with the earlier
exchanges in LLaMA-Factory's ``history`` and an empty ``input``; axolotl ``messages`` starting with the
system message (axolotl's alpaca type has neither history nor system: there ``input`` is the
transcript). ``system`` and ``history`` columns are written only when some row has one, so
single-turn rows export exactly as before. ``--system`` replaces a conversation's own system text.
:mod:`kodolly.export_check` reads an export back the way the trainer maps it.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import ConfigError
from .io.batches import iter_batches
from .turns import chat, history_of, transcript

TARGETS = ("llamafactory", "axolotl")
STYLES = ("alpaca", "chat", "preference")
_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}

_MSG = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
_SHAREGPT_MSG = pa.struct([pa.field("from", pa.string()), pa.field("value", pa.string())])


@dataclass
class ExportResult:
    path: Path
    rows: int
    target: str
    style: str
    format: str
    config: dict[str, Any]  # the dataset_info.json entry (LLaMA-Factory) or YAML mapping (axolotl)
    snippet: str  # ``config`` as the text to paste
    dataset_info: Path | None = None


@dataclass
class _Pair:
    """One exported example, independent of the input layout."""

    system: str
    turns: list[dict[str, str]]  # prompt turns, alternating user/assistant, ending with the user's turn
    output: str
    rejected: str | None
    context: str = ""  # the row's Dolly context (for a conversation: the transcript of its earlier turns)
    conversation: bool = False  # the prompt came as turns (kodolly ``messages``, a trl message list)

    @property
    def instruction(self) -> str:
        return self.turns[-1]["content"]

    @property
    def history(self) -> list[list[str]]:
        """Earlier exchanges as ``[user, assistant]`` pairs (LLaMA-Factory's alpaca ``history``)."""
        return [[u["content"], a["content"]] for u, a in zip(self.turns[:-1:2], self.turns[1:-1:2])]


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return "" if value is None else str(value)


def _conversation(system: str | None, messages: list[dict[str, Any]], where: str) -> tuple[str, list[dict[str, str]]]:
    """The system text (``--system`` wins over the conversation's own) and the alternating turns."""
    own, turns = chat(messages)
    if not turns or turns[-1]["role"] != "user":
        raise ConfigError(f"{where}: the prompt does not end with a user turn")
    return system or own, turns


def _pair(row: dict[str, Any], system: str | None, where: str) -> _Pair:
    if "instruction" in row:
        output = row.get("response") if "response" in row else row.get("chosen")
        history = history_of(row)
        if history:  # a conversation: its earlier turns are turns, not the context transcript
            sys_text, turns = _conversation(system, [*history, {"role": "user", "content": row["instruction"]}], where)
            return _Pair(sys_text, turns, _content(output), row.get("rejected"), row.get("context") or "", True)
        turns = [{"role": "user", "content": row["instruction"]}]
        return _Pair(system or "", turns, _content(output), row.get("rejected"), row.get("context") or "")
    if "prompt" in row and "chosen" in row:
        prompt = row["prompt"]
        if isinstance(prompt, list):
            sys_text, turns = _conversation(system, prompt, where)
        else:
            sys_text, turns = system or "", [{"role": "user", "content": prompt}]
        rejected = row.get("rejected")
        return _Pair(sys_text, turns, _content(row["chosen"]), None if rejected is None else _content(rejected),
                     conversation=isinstance(prompt, list))
    raise ConfigError(f"{where}: rows have neither instruction/response nor prompt/chosen columns")


def _user_text(pair: _Pair) -> str:
    """The last user turn with a single-turn row's context appended, for layouts without an input field."""
    if pair.conversation or not pair.context:
        return pair.instruction
    return f"{pair.instruction}\n\n{pair.context}"


def _messages(pair: _Pair, *, sharegpt: bool) -> list[dict[str, str]]:
    msgs = [{"role": t["role"], "content": t["content"]} for t in pair.turns[:-1]]
    msgs.append({"role": "user", "content": _user_text(pair)})
    if sharegpt:
        names = {"user": "human", "assistant": "gpt"}
        return [{"from": names[m["role"]], "value": m["content"]} for m in msgs]
    return msgs


def _system_messages(pair: _Pair) -> list[dict[str, str]]:
    return [{"role": "system", "content": pair.system}] if pair.system else []


def _alpaca_input(pair: _Pair, target: str) -> str:
    """alpaca ``input``: a single-turn row's context; a conversation's earlier turns go to ``history`` and
    ``system`` (LLaMA-Factory), or stay a transcript here for axolotl, whose alpaca type has neither."""
    if not pair.conversation:
        return pair.context
    if target == "axolotl":
        return pair.context or transcript([{"role": "system", "content": pair.system}, *pair.turns[:-1]])
    return ""


@dataclass(frozen=True)
class _Shape:
    """Optional columns of an export, decided before writing (every row has the same columns)."""

    system: bool
    history: bool


def _record(pair: _Pair, target: str, style: str, shape: _Shape) -> dict[str, Any]:
    if style == "alpaca":
        rec: dict[str, Any] = {"instruction": pair.instruction, "input": _alpaca_input(pair, target), "output": pair.output}
    elif style == "chat":
        if target == "llamafactory":
            rec = {"conversations": _messages(pair, sharegpt=True) + [{"from": "gpt", "value": pair.output}]}
        else:
            return {"messages": _system_messages(pair) + _messages(pair, sharegpt=False)
                    + [{"role": "assistant", "content": pair.output}]}
    else:  # preference
        if pair.rejected is None:
            raise ConfigError("--style preference needs rows with a rejected answer (build them with `kodolly build-dpo`)")
        if target == "llamafactory":
            rec = {"instruction": pair.instruction, "input": _alpaca_input(pair, target), "chosen": pair.output,
                   "rejected": pair.rejected}
        else:
            return {
                "messages": _system_messages(pair) + _messages(pair, sharegpt=False),
                "chosen": {"role": "assistant", "content": pair.output},
                "rejected": {"role": "assistant", "content": pair.rejected},
            }
    if shape.history and style != "chat":
        rec["history"] = pair.history
    if shape.system:
        rec["system"] = pair.system
    return rec


def _schema(target: str, style: str, shape: _Shape) -> pa.Schema:
    s = pa.string()
    if style == "alpaca":
        fields = [("instruction", s), ("input", s), ("output", s)]
    elif style == "chat":
        if target == "axolotl":
            return pa.schema([("messages", pa.list_(_MSG))])
        fields = [("conversations", pa.list_(_SHAREGPT_MSG))]
    else:
        if target == "axolotl":
            return pa.schema([("messages", pa.list_(_MSG)), ("chosen", _MSG), ("rejected", _MSG)])
        fields = [("instruction", s), ("input", s), ("chosen", s), ("rejected", s)]
    if shape.history and style != "chat":
        fields.append(("history", pa.list_(pa.list_(s))))
    if shape.system:
        fields.append(("system", s))
    return pa.schema(fields)


def _llamafactory_entry(file_name: str, style: str, shape: _Shape) -> dict[str, Any]:
    if style == "alpaca":
        entry: dict[str, Any] = {"file_name": file_name, "formatting": "alpaca",
                                 "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    elif style == "chat":
        entry = {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "conversations"},
                 "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}
    else:
        entry = {"file_name": file_name, "formatting": "alpaca", "ranking": True,
                 "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}}
    if shape.history and style != "chat":
        entry["columns"]["history"] = "history"
    if shape.system:
        entry["columns"]["system"] = "system"
    return entry


def _axolotl_config(path: str, fmt: str, style: str) -> dict[str, Any]:
    ds: dict[str, Any] = {"path": path, "ds_type": "json" if fmt == "jsonl" else "parquet", "split": "train"}
    if style == "alpaca":
        ds["type"] = "alpaca"
        return {"datasets": [ds]}
    mapping = {"role": "role", "content": "content"}
    if style == "chat":
        ds.update({"type": "chat_template", "field_messages": "messages", "message_property_mappings": mapping})
        return {"chat_template": "tokenizer_default", "datasets": [ds]}
    ds.update({
        "type": "chat_template.default", "field_messages": "messages", "field_chosen": "chosen",
        "field_rejected": "rejected", "message_property_mappings": mapping,
        "roles": {"user": ["user"], "assistant": ["assistant"], "system": ["system"]},
    })
    return {"rl": "dpo", "chat_template": "tokenizer_default", "datasets": [ds]}


def _tables(output: Path, split: str) -> Iterator[pa.Table]:
    for table in iter_batches(output):
        if "split" in table.column_names:
            if split != "all":
                table = table.filter(pc.equal(table.column("split"), split))
        elif split not in ("all", "train"):
            continue  # rows without a split column are all train
        yield table


def _rows(output: Path, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for table in _tables(output, split):
        for i, row in enumerate(table.to_pylist()):
            yield f"{output} row {row.get('id', i)}", row


def _shape(output: Path, split: str, system: str | None, target: str) -> _Shape:
    """Whether any example has a system text or earlier exchanges; only rows with turns are looked at."""
    has_system, has_history = bool(system), False
    for table in _tables(output, split):
        col, more_than = ("messages", 0) if "messages" in table.column_names else ("prompt", 1)
        if col not in table.column_names or not pa.types.is_list(table.schema.field(col).type):
            continue
        turns = table.filter(pc.greater(pc.list_value_length(table.column(col)), more_than))
        for i, row in enumerate(turns.to_pylist()):
            pair = _pair(row, system, f"{output} row {row.get('id', i)}")
            has_system, has_history = has_system or bool(pair.system), has_history or bool(pair.history)
        if has_system and has_history:
            break
    return _Shape(system=has_system and target != "axolotl", history=has_history and target == "llamafactory")


def default_style(output: Path) -> str:
    from .io.batches import output_schema

    names = output_schema(output).names
    return "preference" if "rejected" in names else "alpaca"


def export(
    output: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    target: str,
    style: str | None = None,
    name: str | None = None,
    system: str | None = None,
    split: str = "train",
) -> ExportResult:
    """Write ``output``'s rows to ``dest`` in ``target``'s layout and return the matching config."""
    out, dest = Path(output), Path(dest)
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    style = style or default_style(out)
    if style not in STYLES:
        raise ConfigError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    fmt = _FORMATS.get(dest.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{dest}: name the export .jsonl or .parquet")
    if target == "axolotl" and style == "alpaca" and system:
        raise ConfigError("axolotl's alpaca type has no system field; use --style chat for a system prompt")
    name = name or dest.stem
    shape = _shape(out, split, system, target)
    schema = _schema(target, style, shape)

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    rows = 0
    try:
        writer = pq.ParquetWriter(tmp, schema, compression="zstd") if fmt == "parquet" else None
        with open(tmp, "wb") if writer is None else nullcontext() as fh:
            buf: list[dict[str, Any]] = []
            for where, row in _rows(out, split):
                buf.append(_record(_pair(row, system, where), target, style, shape))
                if len(buf) >= 5000:
                    _flush(buf, writer, fh, schema)
                    rows += len(buf)
                    buf = []
            if buf:
                _flush(buf, writer, fh, schema)
                rows += len(buf)
        if writer is not None:
            writer.close()
        if rows == 0:
            raise ConfigError(f"{out}: no rows in split {split!r} to export")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

    info_path = None
    if target == "llamafactory":
        entry = _llamafactory_entry(dest.name, style, shape)
        config = {name: entry}
        info_path = dest.parent / "dataset_info.json"
        existing = json.loads(info_path.read_text("utf-8")) if info_path.exists() else {}
        existing[name] = entry
        info_path.write_text(json.dumps(existing, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        snippet = json.dumps(config, ensure_ascii=False, indent=2)
    else:
        from .errors import require

        yaml = require("yaml", "hub")
        config = _axolotl_config(os.path.abspath(dest), fmt, style)  # axolotl may run from anywhere
        snippet = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    return ExportResult(dest, rows, target, style, fmt, config, snippet, info_path)


def _flush(buf: list[dict[str, Any]], writer: pq.ParquetWriter | None, fh: Any, schema: pa.Schema) -> None:
    if writer is not None:
        writer.write_table(pa.Table.from_pylist(buf, schema=schema))
    else:
        fh.write(b"".join(orjson.dumps(r) + b"\n" for r in buf))

