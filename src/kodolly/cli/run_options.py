"""The filter, dedup, split and config options of ``kodolly convert``, kept apart from the command.

:func:`run_options` adds the click options; :func:`cli_config` turns what was given on the command
line into a run config dict (the shape of the TOML file, :mod:`kodolly.config`) holding only the
settings the user gave, so it can be merged over a config file as overrides.
"""

from __future__ import annotations

from typing import Any, Callable

import click

from ..errors import ConfigError
from ..filters.content import HANGUL_FIELDS, LENGTH_FIELDS, parse_bounds
from ..filters.labels import split_list
from ..splits import parse_ratios

_OPTIONS = [
    click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                 help="A run config file (TOML) describing inputs, filters, dedup, split and output; options given here override it."),
    click.option("--input", "inputs", multiple=True, metavar="NAME:PATH",
                 help="Another input read with converter NAME, e.g. alpaca:data/ko.json (repeatable; several converters in one run)."),
    click.option("--min-score", type=float, metavar="T", help="Keep rows with score > T; rows without a score are dropped as no_score."),
    click.option("--keep-unscored/--drop-unscored", default=None, help="With --min-score: keep rows that have no score."),
    click.option("--include-category", multiple=True, metavar="LIST", help="Keep only these Dolly categories (comma list, repeatable)."),
    click.option("--exclude-category", multiple=True, metavar="LIST", help="Drop these Dolly categories (comma list, repeatable)."),
    click.option("--include-domain", multiple=True, metavar="LIST", help="Keep only these domains (comma list, repeatable)."),
    click.option("--exclude-domain", multiple=True, metavar="LIST", help="Drop these domains, e.g. 예체능,종교,보건 (comma list, repeatable)."),
    click.option("--min-chars", multiple=True, metavar="[FIELD=]N", help="Minimum length in characters; FIELD is instruction, context, response (default) or total."),
    click.option("--max-chars", multiple=True, metavar="[FIELD=]N", help="Maximum length in characters; FIELD as for --min-chars."),
    click.option("--min-hangul", multiple=True, metavar="[FIELD=]SHARE", help="Minimum share of Hangul among the letters (0..1) of response (default), instruction or context."),
    click.option("--content-checks/--no-content-checks", default=None, help="Drop Git-LFS pointer text and responses equal to the instruction (default: on)."),
    click.option("--pii", "pii", type=click.Choice(["mask", "reject", "report"]),
                 help="Personal data (주민번호, phone, email, card, ...): mask with placeholders, reject the row as pii_<kind>, or only count (default: off)."),
    click.option("--pii-placeholders", type=click.Choice(["ko", "en"]), help="With --pii mask: <전화번호> (ko, default) or <PHONE> (en)."),
    click.option("--pii-format-only", is_flag=True, default=None,
                 help="With --pii: also flag 13-digit registration numbers whose check digit fails (RRNs issued since 2020 carry none)."),
    click.option("--pii-normalize-tags", is_flag=True, default=None,
                 help="With --pii mask: rewrite known de-identification tags (<NAME>, #@이름#) to the same placeholders."),
    click.option("--dedup/--no-dedup", default=None, help="Exact deduplication over the normalised key fields (default: on)."),
    click.option("--dedup-key", metavar="FIELDS", help="Fields of the dedup key (default instruction,context,response)."),
    click.option("--near-dup", type=float, metavar="THRESHOLD", help="Drop near-duplicates with MinHash Jaccard >= THRESHOLD (e.g. 0.8)."),
    click.option("--near-dup-shingle", type=int, metavar="N", help="Shingle size in characters for --near-dup (default 3)."),
    click.option("--split", "split", metavar="NAME=RATIO,...", help="Split by a hash of id, e.g. train=0.9,validation=0.05,test=0.05 (default: all train)."),
]


def run_options(command: Callable) -> Callable:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


_HTML_OPTIONS = [
    click.option("--html-report/--no-html-report", "html_report", default=True, show_default=True,
                 help="Write OUTPUT's page, <out>.report.html: counts, rejects with examples, lengths, Hangul share, categories, dedup, splits."),
    click.option("--tokenizer", type=click.Path(exists=True), default=None,
                 help="A local tokenizer folder (or tokenizer.json): the HTML report shows token counts too (loaded offline)."),
]


def html_report_options(command: Callable) -> Callable:
    """``--html-report/--no-html-report`` and ``--tokenizer`` (convert and build-dpo)."""
    for option in reversed(_HTML_OPTIONS):
        command = option(command)
    return command


def _lists(values: tuple[str, ...]) -> list[str] | None:
    return split_list(values) if values else None


def cli_config(
    *,
    sources: tuple[str, ...],
    converter: str,
    options: dict[str, Any],
    category: str | None,
    output: str | None,
    output_format: str | None,
    dolly_only: bool,
    rejects_path: str | None,
    run: dict[str, Any],
    engine: str | None = None,
    workers: int | None = None,
    engine_options: dict[str, Any] | None = None,
    limits: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The command line as a (partial) run config dict (``engine_options``: e.g. ray's address, partitions;
    ``limits``: the input limit options given, as the ``[limits]`` table)."""
    data: dict[str, Any] = {}
    if limits:
        data["limits"] = dict(limits)
    pairs = [("name", engine), ("workers", workers), *(engine_options or {}).items()]
    where = {key: value for key, value in pairs if value is not None}
    if where:
        data["engine"] = where
    groups = []
    if sources:
        groups.append({"from": converter, "paths": list(sources)})
    for spec in run.get("inputs") or ():
        name, sep, path = spec.partition(":")
        if not sep or not name or not path:
            raise ConfigError(f"--input {spec!r}: expected NAME:PATH, e.g. alpaca:data/ko.json")
        groups.append({"from": name, "path": path})
    for group in groups:
        if options:
            group["options"] = dict(options)
        if category:
            group["category"] = category
    if groups:
        data["inputs"] = groups
    out = {
        key: value
        for key, value in (("path", output), ("format", output_format), ("rejects", rejects_path), ("dolly_only", dolly_only or None))
        if value is not None
    }
    if out:
        data["output"] = out

    filters: dict[str, Any] = {}
    score: dict[str, Any] = {}
    if run.get("min_score") is not None:
        score["min"] = run["min_score"]
    if run.get("keep_unscored") is not None:
        score["keep_unscored"] = run["keep_unscored"]
    if score:
        filters["score"] = score
    for name in ("category", "domain"):
        labels = {}
        for mode in ("include", "exclude"):
            values = _lists(run.get(f"{mode}_{name}") or ())
            if values is not None:
                labels[mode] = values
        if labels:
            filters[name] = labels
    content: dict[str, Any] = {}
    for key, allowed, integer in (("min_chars", LENGTH_FIELDS, True), ("max_chars", LENGTH_FIELDS, True), ("min_hangul", HANGUL_FIELDS, False)):
        values = run.get(key) or ()
        if values:
            content[key] = parse_bounds(list(values), allowed=allowed, what="--" + key.replace("_", "-"), integer=integer)
    if run.get("content_checks") is not None:
        content["lfs_pointers"] = content["echo"] = run["content_checks"]
    if content:
        filters["content"] = content
    if filters:
        data["filters"] = filters

    pii: dict[str, Any] = {}
    if run.get("pii"):
        pii["action"] = run["pii"]
        pii["enabled"] = True
    for key in ("placeholders", "format_only", "normalize_tags"):
        if run.get("pii_" + key) is not None:
            pii[key] = run["pii_" + key]
    if pii:
        data["pii"] = pii

    dedup: dict[str, Any] = {}
    if run.get("dedup") is not None:
        dedup["enabled"] = run["dedup"]
    if run.get("dedup_key"):
        dedup["key"] = [part.strip() for part in run["dedup_key"].split(",") if part.strip()]
    if dedup:
        data["dedup"] = dedup
    near: dict[str, Any] = {}
    if run.get("near_dup") is not None:
        near["threshold"] = run["near_dup"]
        near["enabled"] = True
    if run.get("near_dup_shingle") is not None:
        near["shingle"] = run["near_dup_shingle"]
    if near:
        data["near_dup"] = near
    if run.get("split"):
        data["split"] = parse_ratios(run["split"])
    return data
