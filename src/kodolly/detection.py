"""Which converter fits an input: one place for ``kodolly inspect`` and for runs without ``--from``.

:func:`detect_input` scores every registered converter's ``detect`` on the input's first record.
:func:`detect_groups` does that for every file and zip member of some sources on its own and groups
the inputs by the converter that fits, so a folder of mixed sources is read in one run with the right
converter for each file. An input no converter fits becomes one ``unknown_format`` reject naming it
(or, with ``strict``, a one-line :class:`~kodolly.errors.ConfigError`) -- never one wrong-reason
reject per record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from .converters import Converter
from .errors import ConfigError
from .io.readers import BadRecord, Location, read_records
from .io.sources import Input, expand_inputs
from .corridor.spec import InputGroup
from .registry import list_converters

UNKNOWN_FORMAT = "unknown_format"
# The converter that reads an input holding no data at all: no converter can be told from nothing, and
# every converter reads an empty input the same way (one ``empty_file`` reject).
EMPTY_INPUT_CONVERTER = "alpaca"
EMPTY_NOTE = "holds no data: every converter reads it as one empty_file reject"
UNKNOWN_DETAIL = "no converter recognises this file; name one with --from (see `kodolly formats`)"


def _convert_nothing(record: Any, loc: Location, ctx: Any) -> Iterator[Any]:
    return iter(())


# The group of inputs no converter fits: each is read as its one ``unknown_format`` reject.
# ``finish`` (which yields nothing) keeps the group in this process: its inputs are never cut into
# chunks for workers, only rejected whole by the reader.
UNKNOWN = Converter(name="unknown", description="inputs no converter recognises", convert=_convert_nothing,
                    finish=lambda ctx: iter(()))


@dataclass
class Detection:
    """The converter that fits an input best (``None``: none does), every positive score, and the
    first record each converter saw."""

    input: Input
    converter: str | None
    scores: dict[str, float] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    probe: Any = None  # the first record read without a record path (shown when nothing fits)


def detect_input(inp: Input) -> Detection:
    """Score every converter on the input's first record; the best one (ties: by name) wins."""
    from .io import tables

    scores: dict[str, float] = {}
    first: dict[str, Any] = {}
    envelope: bool | None = None
    # A table's first row is the same record for every converter: read once.
    row = first_record(inp, None) if tables.is_columnar(inp) else None
    # Converters that read records inside an envelope ("data.item") go first: once one of them is
    # sure, the others would only see the whole file as one record, read whole (GBs for KorQuAD 2).
    for conv in sorted(list_converters(), key=lambda c: not c.record_paths):
        if conv.detect is None:
            continue
        if not conv.record_paths and scores and max(scores.values()) >= 0.9:
            envelope = _is_object_envelope(inp) if envelope is None else envelope
            if envelope:
                continue
        record = row if tables.is_columnar(inp) else first_record(inp, conv)
        if record is None:
            continue
        score = conv.detect(record)
        if score > 0:
            scores[conv.name] = score
            first[conv.name] = record
    if not scores:
        return Detection(inp, None, probe=first_record(inp, None))
    best = max(scores, key=lambda name: (scores[name], name))
    ordered = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    return Detection(inp, best, ordered, first, first[best])


def first_record(inp: Input, conv: Converter | None) -> Any:
    """The input's first record as ``conv`` would read it (``None`` when it has none or it is unreadable)."""
    for record, _loc in read_records(inp, conv.record_paths if conv else ()):
        return None if isinstance(record, BadRecord) else record
    return None


def _is_object_envelope(inp: Input) -> bool:
    """Whether the input is one JSON object (not an array, not JSON Lines, not a table)."""
    from .io import tables
    from .io.readers import BLANK, looks_like_jsonl, sniff

    if inp.suffix in (".jsonl", ".ndjson", ".csv", ".tsv") or tables.is_columnar(inp):
        return False
    head = sniff(inp).data_head.lstrip(b"\xef\xbb\xbf" + BLANK)
    return head.startswith(b"{") and not looks_like_jsonl(head)


def detect_groups(
    sources: Sequence[str | os.PathLike[str] | Input],
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    *,
    strict: bool = False,
    on_detect: Any = None,
) -> list[InputGroup]:
    """The inputs of ``sources``, each detected on its own, as one :class:`InputGroup` per converter
    (in the order the converters are first met; inputs keep their order inside a group).

    Inputs no converter fits go into one last group read with :data:`UNKNOWN`: each is one
    ``unknown_format`` reject. With ``strict`` the first such input raises :class:`ConfigError`.
    ``on_detect(input_name, converter_name_or_None)`` is called for each input (the CLI prints it).
    """
    groups: dict[str, list[Input]] = {}
    unknown: list[Input] = []  # marked rejected by unknown_group
    from .io.readers import sniff

    for inp in expand_inputs(list(sources)):
        if sniff(inp).empty:
            if on_detect is not None:
                on_detect(inp.name, f"{EMPTY_INPUT_CONVERTER} ({EMPTY_NOTE})")
            groups.setdefault(EMPTY_INPUT_CONVERTER, []).append(inp)
            continue
        found = detect_input(inp)
        if on_detect is not None:
            on_detect(inp.name, found.converter)
        if found.converter is None:
            if strict:
                raise ConfigError(f"{inp.name}: {UNKNOWN_DETAIL}")
            unknown.append(inp)
        else:
            groups.setdefault(found.converter, []).append(inp)
    out = [InputGroup(inputs, name, options, category) for name, inputs in groups.items()]
    if unknown:
        out.append(unknown_group(unknown, category))
    return out


def unknown_group(sources: Sequence[str | os.PathLike[str] | Input], category: str | None = None) -> InputGroup:
    """The group of inputs no converter fits: each input is read as its one ``unknown_format`` reject
    (also what a replayed manifest's ``unknown`` group becomes)."""
    inputs = expand_inputs(list(sources))
    for inp in inputs:
        inp.rejected = (UNKNOWN_FORMAT, UNKNOWN_DETAIL)
    return InputGroup(inputs, UNKNOWN, None, category)
