"""``kodolly export --check``: read an export back the way its trainer's loader maps it.

The check loads the written file with ``datasets`` (as LLaMA-Factory and axolotl do) and follows
only the configuration a user gives the trainer: the ``dataset_info.json`` entry on disk
(LLaMA-Factory: ``file_name``, ``formatting``, ``ranking``, ``columns``, ``tags``, with
LLaMA-Factory's defaults for what the entry leaves out) or the axolotl ``datasets:`` mapping
(``path``, ``type``, ``field_messages``, ``message_property_mappings``, ``roles``, ...). A row that
would load empty (a named column missing, no turns, an empty prompt or answer) or with a wrong role
(a tag the mapping does not name, user and assistant not alternating, no final answer) or lose a
column (one the ``dataset_info.json`` entry does not map, e.g. ``system``) fails the
check with one line naming the file, the row and the problem (:class:`ExportCheckError`): the
mistake LLaMA-Factory reports as "Cannot find valid samples".
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import ConfigError, ExportCheckError, require


# LLaMA-Factory's defaults (data/parser.py DatasetAttr) for what an entry leaves out
_LF_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "messages": "conversations"}
_LF_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
            "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
# axolotl's default role names (chat_template strategy)
_AX_ROLES = {"user": ["user", "human"], "assistant": ["assistant", "gpt"], "system": ["system"]}


def _load(path: Path) -> Iterator[dict[str, Any]]:
    """The file's rows as ``datasets.load_dataset`` gives them to the trainer (cache in a temporary folder)."""
    if not path.is_file():
        raise ExportCheckError(f"{path}: the file the config names does not exist")
    datasets = require("datasets", "datasets")
    datasets.disable_progress_bars()
    kind = "parquet" if path.suffix.lower() == ".parquet" else "json"
    with tempfile.TemporaryDirectory(prefix="kodolly-check-") as cache:
        ds = datasets.load_dataset(kind, data_files=str(path), split="train", cache_dir=cache)
        yield from ds
        del ds


def _text(row: Mapping[str, Any], column: str | None, what: str) -> str:
    if column is None:
        return ""
    if column not in row:
        raise _Bad(f"no column {column!r} ({what})")
    value = row[column]
    if value is not None and not isinstance(value, str):
        raise _Bad(f"column {column!r} ({what}) is not text")
    return value or ""


class _Bad(Exception):
    """A problem with one row (turned into a one-line ExportCheckError with the row's place)."""


def _rows_checked(path: Path, check) -> int:
    n = 0
    rows = _load(path)
    try:
        for n, row in enumerate(rows, 1):
            try:
                check(row)
            except _Bad as exc:
                raise ExportCheckError(f"{path}: row {n}: {exc}") from None
    finally:
        rows.close()
    if n == 0:
        raise ExportCheckError(f"{path}: no rows")
    return n


def check_llamafactory(dataset_info: Path, name: str) -> int:
    """Check the export named ``name`` in ``dataset_info`` the way LLaMA-Factory loads it; returns its rows."""
    try:
        info = json.loads(dataset_info.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportCheckError(f"{dataset_info}: cannot read it as JSON ({exc})") from None
    entry = info.get(name) if isinstance(info, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
        raise ExportCheckError(f"{dataset_info}: no entry {name!r} with a file_name")
    path = dataset_info.parent / entry["file_name"]
    formatting = entry.get("formatting", "alpaca")
    columns = {**_LF_COLUMNS, **(entry.get("columns") or {})}
    ranking = bool(entry.get("ranking"))
    system_col = columns.get("system")
    if formatting == "alpaca":
        history_col = columns.get("history")

        def check(row: Mapping[str, Any]) -> None:
            prompt = _text(row, columns["prompt"], "prompt") + _text(row, columns.get("query"), "query")
            if not prompt.strip():
                raise _Bad(f"empty prompt (columns {columns['prompt']!r} + {columns.get('query')!r})")
            answers = ([("chosen", columns.get("chosen")), ("rejected", columns.get("rejected"))] if ranking
                       else [("response", columns.get("response"))])
            for what, col in answers:
                if col is None or not _text(row, col, what).strip():
                    raise _Bad(f"empty {what} (column {col!r})")
            _text(row, system_col, "system")
            if history_col is not None:
                if history_col not in row:
                    raise _Bad(f"no column {history_col!r} (history)")
                for pair in row[history_col] or []:
                    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) and t.strip() for t in pair)):
                        raise _Bad(f"a history entry is not a [user, assistant] pair of texts: {pair!r}")

    elif formatting == "sharegpt":
        tags = {**_LF_TAGS, **(entry.get("tags") or {})}
        users = {tags["user_tag"], tags["observation_tag"]}
        assistants = {tags["assistant_tag"], tags["function_tag"]}

        def check(row: Mapping[str, Any]) -> None:
            col = columns["messages"]
            if col not in row or not row[col]:
                raise _Bad(f"no turns in column {col!r}")
            msgs = list(row[col])
            if system_col is None and isinstance(msgs[0], dict) and msgs[0].get(tags["role_tag"]) == tags["system_tag"]:
                msgs = msgs[1:]
            else:
                _text(row, system_col, "system")
            if not ranking and len(msgs) % 2:
                raise _Bad(f"{len(msgs)} turns: user and assistant turns do not pair up")
            for i, msg in enumerate(msgs):
                want = users if i % 2 == 0 else assistants
                role = msg.get(tags["role_tag"]) if isinstance(msg, dict) else None
                if role not in want:
                    raise _Bad(f"turn {i} has role {role!r} where {' or '.join(map(repr, sorted(want)))} belongs "
                               f"(role_tag {tags['role_tag']!r})")
                content = msg.get(tags["content_tag"])
                if not isinstance(content, str) or not content.strip():
                    raise _Bad(f"turn {i} is empty (content_tag {tags['content_tag']!r})")
            if ranking:
                for what in ("chosen", "rejected"):
                    value = row.get(columns.get(what) or what)
                    if not isinstance(value, dict) or value.get(tags["role_tag"]) not in assistants or not value.get(tags["content_tag"]):
                        raise _Bad(f"{what} is not an assistant turn with text")
    else:
        raise ExportCheckError(f"{dataset_info}: entry {name!r} has formatting {formatting!r} (alpaca or sharegpt)")
    mapped = {col for key, col in columns.items() if col and (key != "messages" or formatting == "sharegpt")}

    def check_all(row: Mapping[str, Any]) -> None:
        check(row)
        lost = sorted(set(row) - mapped)
        if lost:
            raise _Bad(f"column {lost[0]!r} is not in the entry's columns: LLaMA-Factory would leave its text out")

    return _rows_checked(path, check_all)


def check_axolotl(config: Mapping[str, Any], base: Path | None = None) -> int:
    """Check every dataset of an axolotl config the way axolotl's prompt strategy maps it; returns the rows."""
    total = 0
    for ds in config.get("datasets") or []:
        path = Path(ds.get("path", ""))
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        kind = str(ds.get("type", ""))
        if kind == "alpaca":
            def check(row: Mapping[str, Any]) -> None:
                if not _text(row, "instruction", "instruction").strip():
                    raise _Bad("empty instruction")
                _text(row, "input", "input")
                if not _text(row, "output", "output").strip():
                    raise _Bad("empty output")
        elif kind.startswith("chat_template"):
            check = _axolotl_chat_check(ds, preference=kind != "chat_template")
        else:
            raise ExportCheckError(f"{path}: axolotl dataset type {kind!r} is not one kodolly writes")
        total += _rows_checked(path, check)
    if not total:
        raise ExportCheckError("the axolotl config names no dataset")
    return total


def _axolotl_chat_check(ds: Mapping[str, Any], *, preference: bool):
    field = ds.get("field_messages", "messages")
    mapping = {"role": "role", "content": "content", **(ds.get("message_property_mappings") or {})}
    roles = ds.get("roles") or _AX_ROLES
    role_of = {name: role for role, names in roles.items() for name in names}

    def role(msg: Any, i: int) -> str:
        name = msg.get(mapping["role"]) if isinstance(msg, dict) else None
        if name not in role_of:
            raise _Bad(f"message {i} has role {name!r}, which the roles mapping does not name")
        content = msg.get(mapping["content"])
        if not isinstance(content, str) or not content.strip():
            raise _Bad(f"message {i} is empty (property {mapping['content']!r})")
        return role_of[name]

    def check(row: Mapping[str, Any]) -> None:
        if field not in row or not row[field]:
            raise _Bad(f"no messages in column {field!r}")
        got = [role(m, i) for i, m in enumerate(row[field])]
        body = got[1:] if got[0] == "system" else got
        if "system" in body:
            raise _Bad("a system message after the first message")
        want_end = "user" if preference else "assistant"
        expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(body))]
        if not body or body != expected or body[-1] != want_end:
            raise _Bad(f"roles {body} do not alternate user/assistant from the user to the {want_end}")
        if preference:
            for key in ("field_chosen", "field_rejected"):
                col = ds.get(key, key.removeprefix("field_"))
                if col not in row or role(row[col], -1) != "assistant":
                    raise _Bad(f"{col} is not an assistant message")

    return check


def check_export(result: Any) -> int:
    """The check of an :class:`~kodolly.export.ExportResult` just written; returns the rows that load."""
    if result.target == "llamafactory":
        (name,) = result.config
        return check_llamafactory(result.dataset_info, name)
    return check_axolotl(result.config)


def check_written(dest: str | os.PathLike[str], target: str, *, name: str | None = None,
                  config: str | os.PathLike[str] | None = None) -> int:
    """Check an export written earlier: LLaMA-Factory via the ``dataset_info.json`` beside ``dest``
    (entry ``name``, default the file's stem), axolotl via the YAML file ``config``."""
    dest = Path(dest)
    if target == "llamafactory":
        return check_llamafactory(dest.parent / "dataset_info.json", name or dest.stem)
    if config is None:
        raise ConfigError("checking an axolotl export needs --config (the YAML that names it)")
    yaml = require("yaml", "hub")
    path = Path(config)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ExportCheckError(f"{path}: cannot read the axolotl config ({exc})") from None
    if not isinstance(data, dict):
        raise ExportCheckError(f"{path}: not an axolotl config (a YAML mapping)")
    return check_axolotl(data)  # relative paths as axolotl reads them: from where it runs
