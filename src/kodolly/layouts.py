"""Declarative source layouts: a small TOML file that becomes an ordinary :class:`Converter`.

A layout says where the records of a JSON / JSONL / CSV source are and how their fields map to the
Dolly row, so a new source (another AI Hub set, a competition CSV, a user's own QA file) needs no
Python. The file is validated against ``schemas/layout.schema.json``; a bad layout fails with a
:class:`ConfigError` that names the file and the line at fault. the README section "Describing a new source" is the
user's guide; in short::

    name = "my-aihub-set"                # converter name (default: the file name)
    description = "..."
    license = "AI Hub terms"
    records = "[].contents[].QA[]"       # where the records are (see below)

    [fields]                             # instruction and response are required
    instruction = "question"             # a dotted path from the innermost record
    response = "answer"
    context = "../text"                  # ../ climbs one list up, / starts at the outer record
    domain = "/data_category.middle"
    category = { const = "closed_qa" }   # a constant
    id = { first = ["data_id", "id"] }   # the first path present
    # also: { join = ["a", "b"], sep = "\\n" }; { path = "x", default = "", missing = "no_answer" }

    [meta]                               # extra fields kept in the row's meta (absent -> left out)
    register = "/data_category.main"

    [[checks]]                           # reject rows whose two fields are equal up to whitespace
    same = ["instruction", "response"]
    reason = "answer_equals_question"

``records``: the part before the first ``[]`` is where the reader finds the records
(``data_info[]`` -> the record path ``data_info.item``; ``[]`` -> the items of a top-level array,
the lines of a JSONL file or the rows of a CSV file); each further ``key[]`` is a list inside the
record that the converter walks, one row per item of the innermost list. Rows of a walk get the
item indices as ``part``; an id taken from above the innermost item (``/data_id``, shared by its
items) gets them as a suffix (``<id>:<i>.<j>``); a record without an id gets ``<file>:<index>:<i>.<j>``.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .converters import Context, Converter, Reject
from .errors import ConfigError
from .io.readers import Location
from .layout_check import check, fail
from .normalize import normalize_repeated
from .rows import DOLLY_CATEGORIES, make_row

FIELD_NAMES = ("instruction", "context", "response", "category", "domain", "score", "id")
REQUIRED = ("instruction", "response")
_MISSING = object()


# ------------------------------------------------------------------------------------------ paths


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A dotted path into a record: ``up`` lists above the innermost record (``None`` = the outer one)."""

    text: str
    up: int | None
    keys: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "FieldPath":
        rest, up = text, 0
        if rest.startswith("/"):
            rest, up = rest[1:], None
        else:
            while rest.startswith("../"):
                rest, up = rest[3:], up + 1
        return cls(text, up, tuple(rest.split(".")))

    @property
    def dotted(self) -> str:
        return ".".join(self.keys)

    def get(self, stack: Sequence[Any]) -> Any:
        if self.up is None:
            base = stack[0]
        elif self.up < len(stack):
            base = stack[-1 - self.up]
        else:
            return _MISSING
        return lookup(base, self.keys)


def lookup(base: Any, keys: tuple[str, ...]) -> Any:
    """``base[k1][k2]...`` through objects and lists (numeric keys index lists); ``_MISSING`` if absent.

    A key that itself contains dots (a CSV column ``score.v2``) is found when the record has it whole.
    """
    if len(keys) > 1 and isinstance(base, dict):
        whole = ".".join(keys)
        if whole in base:
            return base[whole]
    value = base
    for key in keys:
        if isinstance(value, dict):
            if key not in value:
                return _MISSING
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


# ------------------------------------------------------------------------------------------ fields


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one row field is made: a path, the first present of paths, a join of paths, or a constant."""

    kind: str  # "path" | "first" | "join" | "const"
    paths: tuple[FieldPath, ...] = ()
    const: Any = None
    sep: str = ""
    default: Any = None
    missing: str | None = None  # the reject reason when the value is absent

    @classmethod
    def parse(cls, spec: Any) -> "FieldSpec":
        if isinstance(spec, str):
            return cls("path", (FieldPath.parse(spec),))
        if "const" in spec:
            return cls("const", const=spec["const"])
        kind = "path" if "path" in spec else "first" if "first" in spec else "join"
        raw = spec[kind]
        paths = tuple(FieldPath.parse(p) for p in ([raw] if isinstance(raw, str) else raw))
        return cls(kind, paths, sep=spec.get("sep", ""), default=spec.get("default"), missing=spec.get("missing"))

    def get(self, stack: Sequence[Any]) -> Any:
        """The value, or ``_MISSING``. Null and (for ``first``/``join``) empty text count as absent."""
        if self.kind == "const":
            return self.const
        if self.kind == "path":
            value = self.paths[0].get(stack)
            return _MISSING if value is None else value
        values = [v for v in (p.get(stack) for p in self.paths) if v is not _MISSING and v is not None and v != ""]
        if not values:
            return _MISSING
        if self.kind == "first":
            return values[0]
        if any(not _is_scalar(v) for v in values):
            return next(v for v in values if not _is_scalar(v))  # reported as bad_type by the caller
        return self.sep.join(str(v) for v in values)

    def max_up(self) -> int:
        return max((p.up or 0 for p in self.paths), default=0)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return None


def _squash(text: str) -> str:
    return "".join(normalize_repeated(text).split())  # the pipeline normalises the same texts next


def _squashes_to(text: str, squashed: str) -> bool:
    """``_squash(text) == squashed``, deciding from a head of the normalised text when it can (a long
    answer checked against a short question): squashing a head of a normalised text gives a head of
    the squashed whole."""
    norm = normalize_repeated(text)
    head = "".join(norm[: 4 * len(squashed) + 8].split())
    if len(head) > len(squashed) or not squashed.startswith(head):
        return False
    return "".join(norm.split()) == squashed


# ------------------------------------------------------------------------------------------ converter


@dataclass(frozen=True, eq=False)
class Layout:
    """A compiled layout; calling it converts one outer record (a converter function)."""

    name: str
    walk: tuple[tuple[str, ...], ...]
    fields: Mapping[str, FieldSpec]
    meta: Mapping[str, FieldSpec]
    checks: tuple[tuple[tuple[str, str], str], ...]
    # True when the id comes from a level above the innermost item and so is shared by its items.
    suffix_id: bool = False
    # What the run manifest records about the layout (see :func:`layout_record`).
    definition: Mapping[str, Any] | None = None
    source: str = "<layout>"
    path: str | None = None
    xxh3_128: str | None = None

    def __call__(self, record: Any, loc: Location, ctx: Context) -> Iterator[dict[str, Any] | Reject]:
        if not isinstance(record, dict):
            yield Reject("bad_type:record", f"expected an object, got {type(record).__name__}")
            return
        yield from self._walk([record], (), loc, ctx)

    def _walk(self, stack: list[Any], indices: tuple[int, ...], loc: Location, ctx: Context) -> Iterator[Any]:
        depth = len(stack) - 1
        part = ".".join(map(str, indices))
        if depth == len(self.walk):
            yield self.row(stack, part, loc, ctx)
            return
        keys = self.walk[depth]
        where = ".".join(keys)
        items = lookup(stack[-1], keys)
        if items is _MISSING or items is None:
            yield Reject(f"missing_field:{where}", part=part, raw=stack[-1] if depth else None)
            return
        if not isinstance(items, list):
            yield Reject(f"bad_type:{where}", f"expected a list, got {type(items).__name__}", part=part, raw=stack[-1] if depth else None)
            return
        for i, item in enumerate(items):
            sub = indices + (i,)
            if not isinstance(item, dict):
                yield Reject(f"bad_type:{where}", f"item {i} is not an object", part=".".join(map(str, sub)), raw=item)
                continue
            yield from self._walk(stack + [item], sub, loc, ctx)

    def row(self, stack: Sequence[Any], part: str, loc: Location, ctx: Context) -> dict[str, Any] | Reject:
        """The row made from one innermost record (``stack`` = the records from outer to inner), or a Reject."""
        raw = stack[-1] if len(stack) > 1 else None
        values: dict[str, Any] = {}
        for name, spec in self.fields.items():
            value = spec.get(stack)
            if value is _MISSING:
                if spec.missing:
                    return Reject(spec.missing, f"no value at {_describe(spec)}", part=part, raw=raw)
                if name in REQUIRED:
                    return Reject(f"missing_field:{name}", f"no value at {_describe(spec)}", part=part, raw=raw)
                value = spec.default
                if value is None:
                    continue
            if name == "score":
                score = _as_score(value)
                if score is _MISSING:
                    return Reject("bad_value:score", f"not a number: {str(value)[:80]!r}", part=part, raw=raw)
                values[name] = score
                continue
            text = _as_text(value)
            if text is None:
                return Reject(f"bad_type:{name}", f"expected text, got {type(value).__name__}", part=part, raw=raw)
            values[name] = text
        instruction, response = values["instruction"], values["response"]
        context = values.get("context", "")
        for (a, b), reason in self.checks:
            squashed = _squash(values.get(a, ""))
            if squashed and _squashes_to(values.get(b, ""), squashed):
                return Reject(reason, same_text_detail(a, b), part=part, raw=raw)
        category = values.get("category", "").strip()
        if not category:
            category = "closed_qa" if context.strip() else "open_qa"
        elif category not in DOLLY_CATEGORIES:
            return Reject("bad_value:category", f"{category!r} is not a Dolly task type", part=part, raw=raw)
        rid = values.get("id", "").strip()
        if not rid:
            rid = ctx.derived_id(loc, part or None)
        elif part and self.suffix_id:
            rid = f"{rid}:{part}"
        meta = {}
        for key, spec in self.meta.items():
            value = spec.get(stack)
            if value is _MISSING:
                if spec.missing:
                    return Reject(spec.missing, f"no value at {_describe(spec)}", part=part, raw=raw)
                value = spec.default
            if value is not None and value != "":
                meta[key] = value
        return make_row(
            instruction=instruction,
            context=context,
            response=response,
            category=category,
            source=ctx.source,
            id=rid,
            domain=values.get("domain", ""),
            score=values.get("score"),
            license=ctx.license,
            meta=meta,
        )


    def columns(self, table: Any, ctx: Context, given: Mapping[str, Any] | None = None,
                more_meta: tuple[tuple[str, ...], Any] | None = None) -> dict[str, Any] | None:
        """The columnar fast path (``Converter.columnar``) of a layout without a walk (one row a record):
        the row fields of the records of ``table`` (parsed by pyarrow.json) looked up column by column,
        or None when some record needs the record path (a missing required value, a value that is not
        text, a list on a path, a score, a computed category...). ``given``: columns a converter made
        itself (the field's own path is not looked at); ``more_meta``: ``(keys, texts)``, meta to add
        after the layout's, per record the JSON members (``"key":value,...``; "" for none) of ``keys``."""
        if self.walk or "score" in self.fields:
            return None
        given = given or {}
        n = table.num_rows
        out: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name in given:
                out[name] = given[name]
                continue
            if spec.kind == "const":
                text = _as_text(spec.const)
                if text is None:
                    return None
                out[name] = text
                continue
            if spec.kind != "path":
                return None
            column = column_at(table, spec.paths[0].keys)
            if column is False or (column is not None and not (pa.types.is_string(column.type) or pa.types.is_null(column.type))):
                return None
            if column is None or column.null_count:
                if spec.missing or name in REQUIRED:
                    return None  # the record path says which records lack it, and why
                default = "" if spec.default is None else _as_text(spec.default)
                if default is None:
                    return None
                column = pc.fill_null(column.cast("string"), default) if column is not None else default
            out[name] = column
        if "category" in out:
            return None  # a category from the data: checked record by record
        context = out.get("context", "")
        if isinstance(context, str):
            out["category"] = "closed_qa" if context.strip() else "open_qa"
        else:
            out["category"] = pa.array(["closed_qa" if c.strip() else "open_qa" for c in context.to_pylist()], pa.string())
        out.setdefault("context", "")
        rid = out.pop("id", None)
        if rid is not None:  # stripped; empty -> the derived id (None)
            values = [rid] * n if isinstance(rid, str) else rid.to_pylist()
            out["id"] = [(v.strip() or None) if v is not None else None for v in values]
        if self.meta or more_meta is not None:
            meta = self._meta_columns(table, n)
            if meta is None:
                return None
            out["meta"] = _meta_texts(meta, more_meta, n)
        out["same"] = [(a, b, reason, same_text_detail(a, b)) for (a, b), reason in self.checks]
        return out

    def _meta_columns(self, table: Any, n: int) -> list[tuple[str, Any]] | None:
        """``[(key, values)]`` of the layout's meta, or None when some value cannot be taken column-wise."""
        meta = []
        for key, spec in self.meta.items():
            if spec.kind != "path" or spec.missing:
                return None
            column = column_at(table, spec.paths[0].keys)
            if column is False:
                return None
            if column is None:
                if spec.default is not None:
                    return None
                continue
            kind = column.type
            if not (pa.types.is_string(kind) or pa.types.is_int64(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind)):
                return None  # a float (ints among floats come back as floats), a list or an object
            if column.null_count and spec.default is not None:
                return None
            meta.append((key, column))
        return meta


def same_text_detail(a: str, b: str) -> str:
    """What a ``same`` check's reject says."""
    return f"{a} and {b} are the same text"


_NEEDS_ESCAPE = '["\\\\\\x00-\\x1f]'  # what orjson escapes in a string


def _meta_texts(meta: list[tuple[str, Any]], more: tuple[tuple[str, ...], Any] | None, n: int) -> Any:
    """Each record's meta as JSON text (absent, null and empty values left out, as a row gets them;
    ``more``'s members after the layout's), as orjson writes a row's meta: column by column when no
    text needs escaping, else record by record."""
    import orjson

    more_keys = set(more[0]) if more is not None else set()
    pieces = []
    for key, column in meta:
        if pa.types.is_null(column.type):
            continue
        head = orjson.dumps(key).decode() + ":"
        if pa.types.is_string(column.type):
            if key in more_keys or pc.any(pc.match_substring_regex(column, _NEEDS_ESCAPE)).as_py():
                return _meta_rows(meta, more, n)
            present = pc.and_(pc.is_valid(column), pc.greater(pc.binary_length(column), 0))
            piece = pc.binary_join_element_wise(pa.scalar("," + head + '"'), column, pa.scalar('"'), "")
        else:  # int64, bool: their JSON is their text
            if key in more_keys:
                return _meta_rows(meta, more, n)
            present = pc.is_valid(column)
            piece = pc.binary_join_element_wise(pa.scalar("," + head), column.cast(pa.string()), "")
        pieces.append(pc.if_else(present, piece, pa.scalar("")))  # each present piece starts with a comma
    if more is not None:
        texts = more[1]
        pieces.append(pc.if_else(pc.greater(pc.binary_length(texts), 0),
                                 pc.binary_join_element_wise(pa.scalar(","), texts, ""), pa.scalar("")))
    if not pieces:
        return pa.array(["{}"] * n, pa.string())
    joined = pc.binary_join_element_wise(*pieces, pa.scalar("")) if len(pieces) > 1 else pieces[0]
    return pc.binary_join_element_wise(pa.scalar("{"), pc.utf8_slice_codeunits(joined, 1), pa.scalar("}"), "")


def _meta_rows(meta: list[tuple[str, Any]], more: tuple[tuple[str, ...], Any] | None, n: int) -> list[str]:
    """:func:`_meta_texts` record by record (``more``'s keys replace the layout's of the same name)."""
    import orjson

    keys = [key for key, _column in meta]
    columns = [column.to_pylist() for _key, column in meta]
    extra = more[1].to_pylist() if more is not None else [""] * n
    texts = []
    rows = zip(*columns) if columns else ((),) * n
    for values, members in zip(rows, extra):
        entry = {k: v for k, v in zip(keys, values) if v is not None and v != ""}
        if members:
            entry.update(orjson.loads("{" + members + "}"))
        texts.append(orjson.dumps(entry).decode())
    return texts


def column_at(table: Any, keys: tuple[str, ...]) -> Any:
    """The Arrow column of ``table`` at ``keys`` (through struct fields; a null parent gives null):
    None when no record has a value there, False when a lookup cannot be said column-wise (a list on
    the way, a column named with the dotted path)."""
    if len(keys) > 1 and ".".join(keys) in table.column_names:
        return False
    if keys[0] not in table.column_names:
        return None
    column = table[keys[0]]
    column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    for key in keys[1:]:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            return False
        if not pa.types.is_struct(column.type):
            return None  # text or a number on the way: no value below it
        if column.type.get_field_index(key) < 0:
            return None
        column = pc.struct_field(column, key)
    if pa.types.is_list(column.type) or pa.types.is_struct(column.type) or pa.types.is_large_list(column.type):
        return False
    return column


def _describe(spec: FieldSpec) -> str:
    return " | ".join(p.text for p in spec.paths) or "(constant)"


def _as_score(value: Any) -> Any:
    if isinstance(value, bool):
        return _MISSING
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        if not value.strip():
            return None
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return _MISSING
    else:
        return _MISSING
    return number if math.isfinite(number) else _MISSING


def _detector(keys: tuple[str, ...]):
    paths = [tuple(k.split(".")) for k in keys]

    def detect(record: Any) -> float:
        if isinstance(record, dict) and all(lookup(record, p) is not _MISSING for p in paths):
            return 0.6
        return 0.0

    return detect


# ------------------------------------------------------------------------------------------ loading


def parse_records(records: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """``"data_info[]"`` -> reader record paths ``("data_info.item",)`` and no walk;
    ``"[].contents[].QA[]"`` -> no record paths and the walk ``(("contents",), ("QA",))``."""
    segments = records.split("[]")[:-1]  # "a[].b[]" -> ["a", ".b"]
    outer = segments[0]
    walk = tuple(tuple(seg[1:].split(".")) for seg in segments[1:])
    return ((f"{outer}.item",) if outer else ()), walk


def compile_layout(
    data: Mapping[str, Any],
    *,
    source: str = "<layout>",
    text: str | None = None,
    default_name: str = "layout",
    path: str | None = None,
    xxh3_128: str | None = None,
) -> Converter:
    """A :class:`Converter` from a parsed layout (``text`` is the TOML, for line numbers in errors).

    ``path`` and ``xxh3_128`` name the layout file it was read from (recorded in the run manifest
    with the parsed layout itself, see :func:`layout_record`)."""
    check(data, source, text)
    record_paths, walk = parse_records(data.get("records", "[]"))
    fields = {name: FieldSpec.parse(data["fields"][name]) for name in FIELD_NAMES if name in data["fields"]}
    meta = {key: FieldSpec.parse(spec) for key, spec in data.get("meta", {}).items()}
    for where, spec in [(("fields", k), s) for k, s in fields.items()] + [(("meta", k), s) for k, s in meta.items()]:
        if spec.max_up() > len(walk):
            fail(source, text, list(where), f"{'.'.join(where)}: '../' climbs above the outer record (records = {data.get('records', '[]')!r})")
    category = fields.get("category")
    if category is not None and category.kind == "const" and category.const not in DOLLY_CATEGORIES:
        fail(source, text, ["fields", "category"], f"fields.category: {category.const!r} is not a Dolly task type ({', '.join(sorted(DOLLY_CATEGORIES))})")
    name = data.get("name", default_name)
    id_spec = fields.get("id")
    layout = Layout(
        name=name,
        walk=walk,
        fields=fields,
        meta=meta,
        checks=tuple((tuple(c["same"]), c["reason"]) for c in data.get("checks", ())),  # type: ignore[misc]
        suffix_id=bool(walk) and id_spec is not None and any(p.up != 0 for p in id_spec.paths),
        definition=_plain(data),
        source=source,
        path=path,
        xxh3_128=xxh3_128,
    )
    detect_keys = tuple(data.get("detect_keys", ()))
    return Converter(
        name=name,
        description=data.get("description") or f"layout {source}",
        convert=layout,
        license=data.get("license", ""),
        aliases=tuple(data.get("aliases", ())),
        record_paths=record_paths,
        detect=_detector(detect_keys) if detect_keys else None,
        options={"license": ""},
        columnar=None if walk else layout.columns,
    )


def parse_layout_text(
    text: str, *, source: str = "<layout>", default_name: str = "layout", path: str | None = None, xxh3_128: str | None = None
) -> Converter:
    """A :class:`Converter` from the text of a TOML layout."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        match = re.search(r"\(at line (\d+), column \d+\)", msg)
        where = f"{source}:{match.group(1)}" if match else source
        raise ConfigError(f"{where}: not valid TOML: {msg}") from None
    return compile_layout(data, source=source, text=text, default_name=default_name, path=path, xxh3_128=xxh3_128)


def load_layout(path: str | Path) -> Converter:
    """A :class:`Converter` from a layout file; the name defaults to the file name without ``.toml``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the layout ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the layout is not UTF-8 text") from None
    return parse_layout_text(text, source=str(path), default_name=path.stem, path=str(path), xxh3_128=_digest(raw))


def mapped_converter(mapping: Mapping[str, str], *, records: str = "[]", name: str = "mapped", license: str = "") -> Converter:
    """A converter from a field mapping (``{"instruction": "question", "meta.url": "url", ...}``):
    the in-memory layout behind ``kodolly convert --map``."""
    fields: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for key, path in mapping.items():
        if key.startswith("meta.") and len(key) > 5:
            meta[key[5:]] = path
        elif key in FIELD_NAMES:
            fields[key] = path
        else:
            raise ConfigError(f"--map {key}={path}: {key!r} is not a row field ({', '.join(FIELD_NAMES)}, or meta.NAME)")
    missing = [name for name in REQUIRED if name not in fields]
    if missing:
        raise ConfigError(f"--map: map {' and '.join(missing)} too (e.g. --map {missing[0]}=COLUMN)")
    data: dict[str, Any] = {"name": name, "records": records, "fields": fields, "description": "fields mapped on the command line"}
    if meta:
        data["meta"] = meta
    if license:
        data["license"] = license
    return compile_layout(data, source="--map", default_name=name)


@cache
def shipped_layouts() -> tuple[Converter, ...]:
    """The layouts shipped in ``kodolly/data/layouts`` (the top-level ``converters/``), by file name."""
    folder = resources.files("kodolly").joinpath("data", "layouts")
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            raw = entry.read_bytes()
            where = f"converters/{entry.name}"
            out.append(parse_layout_text(raw.decode("utf-8"), source=where, default_name=entry.name[:-5], path=where, xxh3_128=_digest(raw)))
    return tuple(out)


def shipped_layout(name: str) -> Converter:
    for conv in shipped_layouts():
        if conv.name == name:
            return conv
    raise ConfigError(f"no shipped layout named {name!r}")


# ------------------------------------------------------------------------------------------ manifest


def layout_record(converter: Converter) -> dict[str, Any] | None:
    """What the run manifest records about a layout-based converter, or ``None`` for a Python one.

    ``{"source": ..., "definition": {the parsed layout}, "path": ..., "xxh3_128": ...}``: a layout
    file (``--layout``, ``load_layout``, the shipped ``converters/*.toml``) gives its path and the
    xxh3-128 of its bytes; ``--map`` and a layout compiled from a dict give ``null`` for both.
    """
    layout = converter.convert
    if not isinstance(layout, Layout) or layout.definition is None:
        return None
    return {"source": layout.source, "definition": layout.definition, "path": layout.path, "xxh3_128": layout.xxh3_128}


def _digest(raw: bytes) -> str:
    import xxhash

    return xxhash.xxh3_128_hexdigest(raw)


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON copy of a parsed layout (the manifest's record of it; the caller's dict stays its own)."""
    import json

    return json.loads(json.dumps(data, ensure_ascii=False, default=str))
