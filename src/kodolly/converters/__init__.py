"""Converters: one module per source format. A converter is small and pure.

A converter turns ONE source record into zero or more Dolly rows (``dict``, see :mod:`kodolly.rows`)
and :class:`Reject` s. It never opens files and never prints. The pipeline then normalises the
text of every row, applies the category override, checks the required fields, filters, dedups,
counts and writes.

To add a converter from another package, expose a :class:`Converter` under the entry point group
``kodolly.converters``::

    [project.entry-points."kodolly.converters"]
    mysource = "mypackage.kodolly_plugin:CONVERTER"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..io.readers import Location


@dataclass(frozen=True, slots=True)
class Reject:
    """A record (or part of one) that cannot become a row, and why.

    ``reason`` is a short machine-readable name (``missing_field:response``,
    ``answer_not_in_context``); ``detail`` is for people; ``part`` says which part of the record
    (a question id, a turn index) when the record yields several items.
    """

    reason: str
    detail: str = ""
    part: str = ""
    raw: Any = None  # the part of the record this refers to, when it is not the whole record


@dataclass(slots=True)
class Context:
    """What a converter knows besides the record: its options and where the record came from."""

    source: str
    options: Mapping[str, Any]
    license: str = ""
    # Scratch space for one run (a converter that combines records keeps them here for ``finish``).
    state: dict[str, Any] = field(default_factory=dict)

    def derived_id(self, loc: Location, part: int | str | None = None) -> str:
        """An id for a record without one: the input's file name and the record's index there."""
        base = f"{loc.file.rsplit('!', 1)[-1].rsplit('/', 1)[-1]}:{loc.index}"
        return base if part is None else f"{base}:{part}"


class LazyRecord:
    """A record the corridor parsed column by column (a converter's ``exchanges`` knows its shape):
    :meth:`load` gives the record as a reader would have (for a reject's ``raw``)."""

    __slots__ = ()

    def load(self) -> Any:  # pragma: no cover - subclasses say how
        raise NotImplementedError


def loaded(record: Any) -> Any:
    """The record as a reader gives it (a :class:`LazyRecord` loaded)."""
    return record.load() if isinstance(record, LazyRecord) else record


ConvertFn = Callable[[Any, Location, Context], Iterable["dict[str, Any] | Reject"]]


@dataclass(frozen=True)
class Converter:
    """A named converter and what the rest of kodolly needs to know about it."""

    name: str
    description: str
    convert: ConvertFn
    license: str = ""
    aliases: tuple[str, ...] = ()
    # reader record paths of the records inside a JSON object envelope ("data.item"); arrays need none.
    record_paths: tuple[str, ...] = ()
    # Returns how well a record fits this converter (0 = not at all); used by ``kodolly inspect``.
    detect: Callable[[Any], float] | None = None
    # Option names and their defaults; ``kodolly formats --verbose`` shows them.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Called once after the last record: yields ``(row | Reject, Location)`` items a converter makes
    # from several records together (hansol's ``join_pairs``), from what it kept in ``ctx.state``.
    finish: Callable[[Context], Iterable[tuple[Any, Location]]] | None = None
    # Like ``finish``, for items a converter can make by reading the records again instead of keeping
    # them: called once per input group as ``combine(ctx, records)``, where each ``records()`` call
    # gives the group's ``(record, Location)`` afresh, in input order (as many passes as it needs).
    # The group's inputs are then cut into shards like any other's; this runs as one more shard after them.
    combine: Callable[[Context, Callable[[], Iterator[tuple[Any, Location]]]], Iterable[tuple[Any, Location]]] | None = None
    # Optional fast path for parallel runs (kodolly.corridor): given the records of a JSONL chunk or
    # of a range of a JSON array as an Arrow table (parsed by pyarrow.json, text columns typed string)
    # and the Context, return ``{"instruction", "context", "response", "category"}`` Arrow columns (or
    # a str for a constant) when EVERY record yields exactly one row with those fields and no score --
    # exactly what ``convert`` would give -- or None to decline (the records are then converted one by
    # one with ``convert``). Optional keys: ``id`` (texts, None = the derived id; default all derived),
    # ``domain`` (a column or a str; default ""), ``meta`` (each row's meta as JSON text, before the
    # location; default empty) and ``same`` (``(a, b, reason, detail)``: reject a row whose fields a
    # and b are the same text up to whitespace once normalised, as a layout's ``same`` check does).
    columnar: Callable[[Any, Context], "dict[str, Any] | None"] | None = None
    # Optional bulk path for conversation converters (kodolly.corridor.exchanges): like ``convert``, but
    # yields each row as an ``Exchange`` (its turns, the kept history, id and meta, as in
    # ``kodolly.converters.sharegpt``) instead of a dict; rejects as ``convert`` yields them. The
    # corridor then builds a piece's rows as Arrow columns, each turn normalised once.
    exchanges: ConvertFn | None = None
    # With ``exchanges``: given the records of a JSON Lines chunk as a pyarrow.json table and
    # ``load(i)`` (record i as orjson parses it), return ``(records, texts)``: ``LazyRecord`` s that
    # ``exchanges`` takes in place of the dicts, and the string column their turns' texts are in;
    # or None for a table of another shape (the records are then parsed one by one).
    columnar_records: Callable[[Any, Callable[[int], Any]], Any] | None = None
    # Optional fast path for the items of a JSON array or envelope (kodolly.corridor.nested): the items
    # of a range parsed together by pyarrow.json against ``nested.item_type``, then turned into row
    # columns by ``nested.columns`` (see :class:`NestedColumns`).
    nested: "NestedColumns | None" = None
    # The licence of the source an alias names (``koalpaca`` -> ``CC BY-NC 4.0``): converting with
    # ``--from ALIAS`` gives rows of source ALIAS under that licence (see :meth:`for_alias`).
    alias_licenses: Mapping[str, str] = field(default_factory=dict)

    def for_alias(self, alias: str) -> "Converter":
        """This converter as the named source ``alias``: its name and default licence, when known."""
        import dataclasses

        license = self.alias_licenses.get(alias)
        if license is None:
            return self
        options = dict(self.options)
        if "license" in options:
            options["license"] = license
        return dataclasses.replace(self, name=alias, license=license, options=options, aliases=(), alias_licenses={})

    def context(self, options: Mapping[str, Any] | None = None) -> Context:
        opts = dict(self.options)
        unknown = set(options or {}) - set(opts)
        if unknown:
            from ..errors import ConfigError

            known = ", ".join(sorted(opts)) or "none"
            raise ConfigError(f"converter {self.name!r} has no option {', '.join(sorted(unknown))} (options: {known})")
        opts.update(options or {})
        return Context(source=self.name, options=opts, license=str(opts.get("license") or self.license))


@dataclass(frozen=True)
class NestedColumns:
    """A converter's columnar path for nested records (``Converter.nested``).

    ``item_type`` is the Arrow struct type of one record (every field typed; a record with another
    field or another type makes pyarrow.json fail, and the records are converted one by one).
    ``depth`` is the deepest nesting such a record can have (the run's ``max_depth`` must allow it).
    ``columns(records, ctx)`` gets the records as an Arrow struct array and returns
    ``{"record": numpy int array, the record of each row (ascending), "irregular": numpy bool mask of
    the records whose rows the columnar path cannot give exactly as ``convert`` would (they are
    converted one by one), "instruction", "context", "response", "id": Arrow string arrays, normalised
    (one value per row), "category": str or array, "meta": Arrow string array of each row's meta JSON
    without its closing brace}``. Every regular record yields only rows, none of them rejected.
    """

    item_type: Any
    depth: int
    columns: Callable[[Any, Context], "dict[str, Any]"]


def text_field(record: Mapping[str, Any], key: str, *, required: bool = True) -> str | Reject:
    """A string field of a record, or the Reject that says why it cannot be used.

    Missing or null -> ``missing_field:KEY`` (or ``""`` when not required); numbers are turned
    into text (spreadsheets store answers like ``42`` as numbers); lists, objects and booleans ->
    ``bad_type:KEY``.
    """
    value = record.get(key)
    if value is None:
        return Reject(f"missing_field:{key}") if required else ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return Reject(f"bad_type:{key}", f"expected text, got {type(value).__name__}")


def int_value(value: Any) -> int | None:
    """A whole number from a record field (ints, whole floats and digit strings like ``"12"`` or ``"-3"``
    accepted, as spreadsheets and hand-made files store them), else ``None``; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None
