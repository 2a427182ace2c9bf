"""The run report: counts per source and per reason plus a few example rejects for each reason.

Printed after a run as a table and written beside the output as ``<out>.report.json``. The counts
are the run's tally (:meth:`Tally.as_dict`); the examples are the first ``EXAMPLES_PER_REASON``
rejects of each tally reason in input order, each with its location and a short excerpt, so a
person can see at a glance what a filter removed and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import orjson

from .tally import Tally

EXAMPLES_PER_REASON = 3
EXCERPT_CHARS = 80
REPORT_VERSION = 1


def report_path(manifest_path: Path) -> Path:
    """``out.manifest.json`` -> ``out.report.json``."""
    name = manifest_path.name
    stem = name[: -len(".manifest.json")] if name.endswith(".manifest.json") else manifest_path.stem
    return manifest_path.with_name(stem + ".report.json")


def one_line(text: Any) -> str:
    """Text for a person's terminal: one line (whitespace runs, newlines included, become one space)
    and no raw control characters (a NUL shows as ``\\x00``)."""
    text = " ".join(str(text).split())
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _excerpt(text: Any, limit: int = EXCERPT_CHARS) -> str:
    if not isinstance(text, str):
        text = orjson.dumps(text, default=str).decode() if text is not None else ""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# the location the pipeline puts last into a row's meta: ..."file":"NAME","line":N} (or "index")
_FILE_IN_META = r'"file":"(?P<file>(?:[^"\\]|\\.)*)"(?:,"(?:line|index)":-?\d+)?\}$'


class RunReport:
    """Collects example rejects during a run, and rows written and rejected per input file (which
    converter read each file, and a warning for a file whose every item was rejected); the counts
    per source and reason come from the tally at the end."""

    def __init__(self, per_reason: int = EXAMPLES_PER_REASON, filters: Sequence[Any] = ()) -> None:
        self.per_reason = per_reason
        self.examples: dict[str, list[dict[str, Any]]] = {}
        self.inputs: dict[str, dict[str, Any]] = {}  # file -> {converter, written, rejected}
        self.pii = next((f for f in filters if getattr(f, "name", "") == "pii"), None)
        self.pii_summary = None
        if self.pii is not None:
            from .filters.pii import PiiSummary

            self.pii_summary = PiiSummary()

    def input(self, name: str, converter: str) -> None:
        """Name an input of the run and the converter that reads it (in reading order)."""
        self.inputs.setdefault(name, {"converter": converter, "written": 0, "rejected": 0})

    def count_rows(self, rows: Sequence[dict[str, Any]] | None, table: Any = None) -> None:
        """Count written rows per input file (from ``meta.file``; of a table's ``meta`` column). Nothing
        to do when no input was named (build-dpo writes its own row layouts through the sink)."""
        if not self.inputs:
            return
        if table is not None:
            import json

            import pyarrow.compute as pc

            meta = table.column("meta").combine_chunks()
            files = pc.struct_field(pc.extract_regex(meta, _FILE_IN_META), "file")
            for entry in pc.value_counts(files).to_pylist():
                if entry["values"] is None:  # not in the usual place: read those rows' meta
                    for text in pc.filter(meta, pc.is_null(files)).to_pylist():
                        self._bump(json.loads(text).get("file", ""), "written", 1)
                    continue
                self._bump(json.loads('"' + entry["values"] + '"'), "written", entry["counts"])
            return
        for row in rows or ():
            self._bump(row["meta"].get("file", ""), "written", 1)

    def count_written(self, name: str, n: int) -> None:
        """``n`` rows of input ``name`` written, counted by the caller (the sink from a chunk's row arrays,
        an engine whose nodes write the rows)."""
        self._bump(name, "written", n)

    def _bump(self, name: str, key: str, n: int) -> None:
        entry = self.inputs.get(name)
        if entry is not None:
            entry[key] += n

    def add_written(self, batch: Any) -> None:
        """Look at rows as they are written (an Arrow table or a list of row dicts): the PII counts."""
        if self.pii_summary is None:
            return
        if isinstance(batch, list):
            self.pii_summary.add_rows(batch)
        else:
            self.pii_summary.add_table(batch)

    def add(self, key: str, reject: dict[str, Any]) -> None:
        self._bump(reject["file"], "rejected", 1)
        found = self.examples.get(key)
        if found is None:
            found = self.examples[key] = []
        if len(found) >= self.per_reason:
            return
        raw = reject.get("raw")
        example = {
            "reason": reject["reason"],
            "source": reject["source"],
            "file": reject["file"],
            "line": reject["line"],
            "index": reject["index"],
            "id": reject["id"],
            "detail": reject["detail"],
        }
        if isinstance(raw, dict) and "instruction" in raw and "response" in raw:
            example["instruction"] = _excerpt(raw["instruction"])
            example["response"] = _excerpt(raw["response"])
        else:
            example["raw"] = _excerpt(raw, 160)
        found.append(example)

    def as_dict(self, tally: Tally, filters: Sequence[Any] = ()) -> dict[str, Any]:
        data = {
            "report_version": REPORT_VERSION,
            "counts": tally.as_dict(),
            "filters": [{"name": f.name, "settings": f.settings()} for f in filters],
            "examples": {key: self.examples[key] for key in sorted(self.examples)},
            "inputs": [{"file": name, **entry} for name, entry in self.inputs.items()],
            "warnings": self.warnings(),
        }
        if self.pii_summary is not None:
            data["pii"] = self.pii_summary.as_dict(self.pii, tally.by_reason)
        return data

    def warnings(self) -> list[str]:
        """One line per input whose every item was rejected."""
        return [
            f"{name}: all {entry['rejected']} items were rejected, none written (read with {entry['converter']})"
            for name, entry in self.inputs.items()
            if entry["rejected"] and not entry["written"]
        ]

    @staticmethod
    def write(path: Path, data: dict[str, Any]) -> None:
        from .io.writers import write_json_atomic

        write_json_atomic(path, data)


def format_examples(data: dict[str, Any]) -> str:
    """The example rejects of a report as lines a person can read (empty when nothing was rejected)."""
    examples = data.get("examples") or {}
    if not examples:
        return ""
    lines = [f"example rejects (first {EXAMPLES_PER_REASON} per reason)"]
    for key, items in examples.items():
        lines.append(f"  {one_line(key)}")
        for ex in items:
            where = ex["file"] + (f":{ex['line']}" if ex.get("line") is not None else f"#{ex['index']}")
            ident = f" id={ex['id']}" if ex.get("id") else ""
            reason = f" [{ex['reason']}]" if ex["reason"] != key else ""
            detail = f" ({ex['detail']})" if ex.get("detail") else ""
            text = f"{ex['instruction']} → {ex['response']}" if "instruction" in ex else ex.get("raw", "")
            lines.append("    " + one_line(f"{ex['source']} {where}{ident}{reason}{detail}: {text}"))
    return "\n".join(lines)


def format_by_source(tally: Tally) -> str:
    """Reject counts per source and reason (empty unless the run read more than one source)."""
    if len(tally.sources) < 2 or not tally.rejected:
        return ""
    lines = [f"{'source':<20}{'reject reason':<40}{'count':>10}"]
    for name, counts in sorted(tally.sources.items()):
        for n, (reason, count) in enumerate(sorted(counts.rejected.items(), key=lambda kv: (-kv[1], kv[0]))):
            lines.append(f"{name if n == 0 else '':<20}{reason:<40}{count:>10}")
    return "\n".join(lines)


def format_inputs(data: dict[str, Any]) -> str:
    """Which converter read which input, with its counts (empty unless the run read several converters)."""
    inputs = data.get("inputs") or []
    if len({entry["converter"] for entry in inputs}) < 2:
        return ""
    lines = [f"{'converter':<14}{'written':>9}{'rejected':>10}  input"]
    for entry in inputs:
        lines.append(f"{entry['converter']:<14}{entry['written']:>9}{entry['rejected']:>10}  {entry['file']}")
    return "\n".join(lines)


def format_warnings(data: dict[str, Any]) -> str:
    return "\n".join(f"warning: {line}" for line in data.get("warnings") or [])


def format_report(data: dict[str, Any], tally: Tally) -> str:
    """The tally table, which converter read which input (several converters), the rejects per source
    and reason (several sources), the example rejects, and warnings (an input with no row written)."""
    parts = [tally.format(), format_inputs(data), format_by_source(tally), format_examples(data), format_warnings(data)]
    return "\n\n".join(part for part in parts if part)
