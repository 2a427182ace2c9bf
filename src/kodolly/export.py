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
``dataset_info.json`` beside the export (merged with entries already there).
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
    turns: list[dict[str, str]]  # prompt turns (user/assistant ...), ending with the user's turn
    output: str
    rejected: str | None

    @property
    def instruction(self) -> str:
        return self.turns[-1]["content"]


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return "" if value is None else str(value)


def _pair(row: dict[str, Any], system: str | None, where: str) -> _Pair:
    sys_text = system or ""
    if "instruction" in row:
        user = row["instruction"]
        ctx = row.get("context") or ""
        turns = [{"role": "user", "content": user}]
        output = row.get("response") if "response" in row else row.get("chosen")
        pair = _Pair(sys_text, turns, _content(output), row.get("rejected"))
        pair.turns[0]["context"] = ctx
        return pair
    if "prompt" in row and "chosen" in row:
        prompt = row["prompt"]
        if isinstance(prompt, list):
            turns = [{"role": m["role"], "content": m["content"]} for m in prompt if m.get("role") != "system"]
            sys_msgs = [m["content"] for m in prompt if m.get("role") == "system"]
            if sys_msgs and not system:
                sys_text = sys_msgs[0]
        else:
            turns = [{"role": "user", "content": prompt}]
        if not turns or turns[-1]["role"] != "user":
            raise ConfigError(f"{where}: the prompt does not end with a user turn")
        rejected = row.get("rejected")
        return _Pair(sys_text, turns, _content(row["chosen"]), None if rejected is None else _content(rejected))
    raise ConfigError(f"{where}: rows have neither instruction/response nor prompt/chosen columns")


def _user_text(pair: _Pair) -> str:
    """The last user turn with its context appended, for layouts without an input field."""
    ctx = pair.turns[-1].get("context", "")
    return f"{pair.instruction}\n\n{ctx}" if ctx else pair.instruction


def _history_text(pair: _Pair) -> str:
    """Earlier turns of a conversational prompt, as text (alpaca layouts have one user turn)."""
    return pair.turns[-1].get("context", "") if len(pair.turns) == 1 else "\n".join(
        f"{t['role']}: {t['content']}" for t in pair.turns[:-1]
    )


def _messages(pair: _Pair, *, sharegpt: bool) -> list[dict[str, str]]:
    msgs = [{"role": t["role"], "content": t["content"]} for t in pair.turns[:-1]]
    msgs.append({"role": "user", "content": _user_text(pair)})
    if sharegpt:
        names = {"user": "human", "assistant": "gpt", "system": "system"}
        return [{"from": names[m["role"]], "value": m["content"]} for m in msgs]
    return msgs


def _record(pair: _Pair, target: str, style: str, with_system: bool) -> dict[str, Any]:
    if style == "alpaca":
        rec: dict[str, Any] = {"instruction": pair.instruction, "input": _history_text(pair), "output": pair.output}
    elif style == "chat":
        if target == "llamafactory":
            rec = {"conversations": _messages(pair, sharegpt=True) + [{"from": "gpt", "value": pair.output}]}
        else:
            sys_msgs = [{"role": "system", "content": pair.system}] if pair.system else []
            rec = {"messages": sys_msgs + _messages(pair, sharegpt=False) + [{"role": "assistant", "content": pair.output}]}
            return rec
    else:  # preference
        if pair.rejected is None:
            raise ConfigError("--style preference needs rows with a rejected answer (build them with `kodolly build-dpo`)")
        if target == "llamafactory":
            rec = {"instruction": pair.instruction, "input": _history_text(pair), "chosen": pair.output, "rejected": pair.rejected}
        else:
            sys_msgs = [{"role": "system", "content": pair.system}] if pair.system else []
            return {
                "messages": sys_msgs + _messages(pair, sharegpt=False),
                "chosen": {"role": "assistant", "content": pair.output},
                "rejected": {"role": "assistant", "content": pair.rejected},
            }
    if with_system:
        rec["system"] = pair.system
    return rec


def _schema(target: str, style: str, with_system: bool) -> pa.Schema:
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
    if with_system:
        fields.append(("system", s))
    return pa.schema(fields)


def _llamafactory_entry(file_name: str, style: str, with_system: bool) -> dict[str, Any]:
    if style == "alpaca":
        entry: dict[str, Any] = {"file_name": file_name, "formatting": "alpaca",
                                 "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    elif style == "chat":
        entry = {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "conversations"},
                 "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}
    else:
        entry = {"file_name": file_name, "formatting": "alpaca", "ranking": True,
                 "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}}
    if with_system:
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


def _rows(output: Path, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for table in iter_batches(output):
        if "split" in table.column_names:
            if split != "all":
                table = table.filter(pc.equal(table.column("split"), split))
        elif split not in ("all", "train"):
            continue  # rows without a split column are all train
        for i, row in enumerate(table.to_pylist()):
            yield f"{output} row {row.get('id', i)}", row


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
    with_system = bool(system) and not (target == "axolotl")
    name = name or dest.stem
    schema = _schema(target, style, with_system)

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
                buf.append(_record(_pair(row, system, where), target, style, with_system))
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
        entry = _llamafactory_entry(dest.name, style, with_system)
        config = {name: entry}
        info_path = dest.parent / "dataset_info.json"
        existing = json.loads(info_path.read_text("utf-8")) if info_path.exists() else {}
        existing[name] = entry
        info_path.write_text(json.dumps(existing, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        snippet = json.dumps(config, ensure_ascii=False, indent=2)
    else:
        from .errors import require

        yaml = require("yaml", "hub")
        config = _axolotl_config(str(dest), fmt, style)
        snippet = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    return ExportResult(dest, rows, target, style, fmt, config, snippet, info_path)


def _flush(buf: list[dict[str, Any]], writer: pq.ParquetWriter | None, fh: Any, schema: pa.Schema) -> None:
    if writer is not None:
        writer.write_table(pa.Table.from_pylist(buf, schema=schema))
    else:
        fh.write(b"".join(orjson.dumps(r) + b"\n" for r in buf))

