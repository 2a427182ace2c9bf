"""A run's HTML page: ``<out>.report.html``, one self-contained file beside the report JSON.

``kodolly convert`` and ``kodolly build-dpo`` write it inside the run's commit (it is a member of the
:class:`~kodolly.io.commit.OutputSet`, listed in the manifest as ``report_html``), from the staged output
and rejects, the report and the manifest being committed; ``kodolly report OUTPUT``
(:func:`build_html_report`) builds it again from a committed output, its rejects, report and manifest, and
gives the same bytes (the page is built from the manifest without its own ``report_html`` entry, and
nothing on it depends on the time or the machine).

- :mod:`.stats` — the figures, in streaming passes over the files;
- :mod:`.charts` — matplotlib SVGs;
- :mod:`.page` — the HTML.

Nothing private goes on the page: files by their names only (:func:`kodolly.hub.public.public_manifest`),
no environment, and the settings are the manifest's, which holds no key or token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError, InputError
from ..hub.public import public_manifest, public_name, scrub_paths

MANIFEST_KEY = "report_html"


@dataclass(frozen=True)
class HtmlOptions:
    """How the page is built: ``tokenizer`` = a local tokenizer folder (or ``tokenizer.json``) whose
    token counts the page shows beside the character counts (loaded offline)."""

    tokenizer: str | None = None


class _Tokens:
    """Token counts of texts with a local tokenizer (``tokenizers`` directly when the folder has a
    ``tokenizer.json``, else ``transformers.AutoTokenizer``), never downloading anything."""

    def __init__(self, path: str) -> None:
        p = Path(path)
        self.name = p.name
        file = p / "tokenizer.json" if p.is_dir() else p
        if file.name == "tokenizer.json" and file.is_file():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(file))
            self._count = lambda texts: [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]
        elif p.is_dir():
            from ..errors import require

            transformers = require("transformers", "train")
            tok = transformers.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
            self._count = lambda texts: [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
        else:
            raise ConfigError(f"--tokenizer {path}: not a tokenizer folder or tokenizer.json")

    def count(self, texts: list[str]) -> list[int]:
        return self._count(texts)


def page_data(
    output: Path, fmt: str, rejects: Path | None, manifest: dict[str, Any], report: dict[str, Any] | None,
    *, names: dict[str, str], tokenizer: str | None = None, stats: Any = None,
) -> dict[str, Any]:
    """Everything the page shows. ``output``/``rejects``: the files to read (staged or final); ``names``:
    the names the page gives them (``output``, ``rejects``); ``manifest``: the run's, without ``report_html``;
    ``stats``: an :class:`~.stats.OutputStats` the run fed with every row it wrote (else the output is read)."""
    from ..io.batches import iter_batches
    from ..io.writers import json_bytes
    from .stats import STATS_COLUMNS, OutputStats, kept_rows, rejects_stats

    # the same values whether the manifest is the run's dict or its file read back (key order, tuples)
    manifest = orjson.loads(json_bytes({k: v for k, v in manifest.items() if k != MANIFEST_KEY}))
    report = orjson.loads(json_bytes(report)) if report is not None else None
    if stats is None:
        stats = OutputStats(_Tokens(tokenizer) if tokenizer else None)
        for table in iter_batches(output, fmt=fmt, columns=STATS_COLUMNS):
            stats.add(table)
    figures = stats.as_dict(columns=output_columns(output, fmt))
    rej = rejects_stats(rejects)
    wanted = {d["kept_id"] for items in rej["duplicates"].values() for d in items}
    kept = kept_rows(output, fmt, wanted)
    public = public_manifest(manifest)
    counts = manifest["counts"]
    return {
        "kind": "build-dpo" if (manifest.get("converter") or {}).get("name") == "build-dpo" else "convert",
        "output": names["output"],
        "rejects_file": names.get("rejects"),
        "created": manifest.get("created"),
        "kodolly_version": manifest.get("kodolly_version", ""),
        "counts": counts,
        "inputs": [{**i, "file": public_name(i["file"])} for i in (report or {}).get("inputs") or []],
        "warnings": [scrub_paths(w) for w in (report or {}).get("warnings") or []],
        "filters": public.get("filters") or [],
        "stats": figures,
        "rejects": rej,
        "kept": kept,
        "dpo": public.get("dpo"),
        "manifest": public,
        "tokenizer": stats.tokenizer.name if stats.tokenizer is not None else None,
    }


def output_columns(output: Path, fmt: str) -> list[str]:
    """The column names of an output (none for an output with no rows)."""
    from ..errors import ConfigError
    from ..io.batches import output_schema

    try:
        return list(output_schema(output, fmt).names)
    except ConfigError:  # no rows
        return []


def stats_for(options: HtmlOptions):
    """An empty :class:`~.stats.OutputStats` for a run's rows (its tokenizer loaded)."""
    from .stats import OutputStats

    return OutputStats(_Tokens(options.tokenizer) if options.tokenizer else None)


def render_page(output: Path, fmt: str, rejects: Path | None, manifest: dict[str, Any], report: dict[str, Any] | None,
                *, names: dict[str, str], tokenizer: str | None = None, stats: Any = None) -> bytes:
    """The page's bytes (UTF-8 HTML)."""
    from .page import render

    return render(page_data(output, fmt, rejects, manifest, report, names=names, tokenizer=tokenizer, stats=stats)).encode("utf-8")


def build_html_report(output: str | os.PathLike[str], *, tokenizer: str | None = None) -> Path:
    """Build ``<out>.report.html`` again from a committed output, its rejects, report and manifest, and
    record it in the manifest (the same bytes as the run wrote when nothing changed). Returns its path."""
    from ..io.commit import refresh_member, set_state
    from ..io.writers import output_paths

    p = Path(output)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    paths = output_paths(p, "datasets" if p.is_dir() else None)
    if not paths.manifest.exists():
        raise InputError(f"{p}: no manifest beside it ({paths.manifest.name}); the page is built from a kodolly run's output set")
    state = set_state(paths)
    if state.kind != "committed":
        raise InputError(f"{p}: not a finished kodolly output ({state.why})")
    manifest = orjson.loads(paths.manifest.read_bytes())
    rejects = _beside(paths.rejects, manifest.get("rejects"))
    report_file = _beside(paths.report, manifest.get("report"))
    report = orjson.loads(report_file.read_bytes()) if report_file is not None else None
    fmt = (manifest.get("output") or {}).get("format") or paths.format
    page = render_page(p, fmt, rejects, manifest, report, names=page_names(paths), tokenizer=tokenizer)
    refresh_member(paths, paths.report_html, MANIFEST_KEY, page)
    return paths.report_html


def page_names(paths: Any) -> dict[str, str]:
    """The names the page gives the run's files: their names, as in a published folder."""
    return {"output": paths.output.name, "rejects": paths.rejects.name}


def _beside(here: Path, entry: dict[str, Any] | None) -> Path | None:
    """A side file of the set: at its usual place, else where the manifest recorded it."""
    if entry is None:
        return None
    for path in (here, Path(entry["path"])):
        if path.exists():
            return path
    return None


__all__ = ["HtmlOptions", "MANIFEST_KEY", "build_html_report", "page_data", "page_names", "render_page", "stats_for"]
