"""What a published folder may say about the machine it was built on: file names, never paths.

A manifest records inputs and outputs by the path they had on the machine that made them
(``/home/user/secret/KorQuAD_v1.0_train.json``), and each row's ``meta.file`` says which input it
came from. Pushed to the Hub, those paths become public. The folder therefore holds:

- in ``kodolly.manifest.json`` and the card: each input, output, rejects and report file (JSON and HTML) by its name only
  (``KorQuAD_v1.0_train.json``; a zip member as ``archive.zip!member``, the member's path inside
  the archive kept), hashes, sizes and counts unchanged; any other setting that is an absolute path
  (a converter option naming a layout file, say) by its name as well;
- in the shards: ``meta.file`` of each row by the same name.

The manifest beside the original output is left as it is.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_ZIP_MEMBER = re.compile(r"^(.*?\.zip(?:\.part\d+)?)!(.*)$", re.IGNORECASE | re.DOTALL)
_ABSOLUTE = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")


def _basename(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] or path


def public_name(name: str) -> str:
    """``/home/u/data/x.json`` -> ``x.json``; ``/home/u/a.zip!dir/m.json`` -> ``a.zip!dir/m.json``."""
    m = _ZIP_MEMBER.match(name)
    if m:
        return f"{_basename(m.group(1))}!{m.group(2)}"
    return _basename(name)


# an absolute path inside free text (a reject's detail, a warning): /a/b/name -> name; not a URL's path (after ':' or a word)
_ABS_PATH = re.compile(r"(?<![\w.:/~-])(?:/|~/|[A-Za-z]:\\)(?:[^\s/\\\"'<>:]+[/\\])+(?=[^\s/\\\"'<>]+)")


def scrub_paths(text: str) -> str:
    """Absolute paths in ``text`` reduced to their last part (file names only)."""
    return _ABS_PATH.sub("", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return public_name(value) if _ABSOLUTE.match(value) else value
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def public_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``manifest`` with input/output/rejects/report paths reduced to names (see the module doc)."""
    m = copy.deepcopy(manifest)
    for item in m.get("inputs") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            item["name"] = public_name(item["name"])
    for group in m.get("groups") or []:
        if isinstance(group, dict) and isinstance(group.get("inputs"), list):
            group["inputs"] = [public_name(n) if isinstance(n, str) else n for n in group["inputs"]]
    for item in (m.get("output") or {}).get("files") or []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            item["path"] = public_name(item["path"])
    for key in ("rejects", "report", "report_html"):
        entry = m.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            entry["path"] = public_name(entry["path"])
    counts = m.pop("counts", None)  # counts are keyed by source and reason, never paths: kept as they are
    m = _scrub(m)
    if counts is not None:
        m["counts"] = counts
    return m


_FILE_VALUE = r'"file": ?"(?P<value>(?:[^"\\]|\\.)*)"'


def scrub_meta_files(table: pa.Table) -> pa.Table:
    """Replace every ``"file": "<path>"`` in the JSON ``meta`` column by ``"file": "<name>"``.

    One regex pass finds the distinct ``file`` values of the batch (usually one or two: rows come
    in input order); only those are replaced, so the cost does not grow with the number of inputs.
    """
    if "meta" not in table.column_names:
        return table
    kind = table.schema.field("meta").type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return table
    col = table.column("meta")
    found = pc.struct_field(pc.extract_regex(col, _FILE_VALUE), "value")
    changed = False
    for raw in pc.unique(found.drop_null()).to_pylist():
        try:
            value = json.loads(f'"{raw}"')
        except ValueError:
            continue
        public = public_name(value)
        if public == value:
            continue
        replacement = json.dumps(public, ensure_ascii=False)[1:-1]
        for sep in (":", ": "):  # orjson writes no space; json.dumps writes one
            col = pc.replace_substring(col, f'"file"{sep}"{raw}"', f'"file"{sep}"{replacement}"')
        changed = True
    if not changed:
        return table
    return table.set_column(table.schema.get_field_index("meta"), table.schema.field("meta"), col)
