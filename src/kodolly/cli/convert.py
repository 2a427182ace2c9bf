"""``kodolly formats``, ``kodolly inspect`` and ``kodolly convert``."""

from __future__ import annotations

import json

import click

from .. import api
from ..errors import ConfigError
from ..rows import DOLLY_CATEGORIES
from ..io.writers import FORMATS
from .limit_options import given_limits, limit_options
from .run_options import cli_config, html_report_options, run_options


def parse_options(pairs: tuple[str, ...]) -> dict[str, object]:
    """``-O KEY=VALUE`` pairs; VALUE is read as JSON when it parses (``true``, ``3``), else as text."""
    from ..config import key_values

    return key_values(pairs, "--option")


@click.command("formats")
@click.option("-v", "--verbose", is_flag=True, help="Also show aliases, options and licences.")
def formats_command(verbose: bool) -> None:
    """List the converters, one line each."""
    for conv in api.formats():
        click.echo(f"{conv.name:<12} {conv.description}")
        if verbose:
            if conv.aliases:
                named = [f"{a} ({conv.alias_licenses[a]})" if a in conv.alias_licenses else a for a in conv.aliases]
                click.echo(f"{'':<12}   aliases: {', '.join(named)}")
            if conv.options:
                click.echo(f"{'':<12}   options: {json.dumps(dict(conv.options), ensure_ascii=False)}")
            if conv.license:
                click.echo(f"{'':<12}   licence: {conv.license}")


@click.command("inspect")
@click.argument("file")
def inspect_command(file: str) -> None:
    """Name the converter that fits FILE (an input or a kodolly output; JSON, JSONL, CSV, parquet,
    Arrow, a datasets folder, an hf:// source) and show one converted row."""
    found = api.inspect_file(file)
    if found.empty:
        raise ConfigError(f"{found.file}: holds no data (a converter reads it as one empty_file reject)")
    if found.converter is None:
        raise ConfigError(f"{found.file}: no converter recognises this file (first record: {_short(found.record)})")
    click.echo(f"{found.file}: {found.converter}")
    if found.columns is not None:
        click.echo("columns: " + ", ".join(found.columns))
    if found.kodolly_output:
        click.echo("a kodolly output: --from dolly reads it back with its ids, licence, domain, score and meta")
    others = {k: v for k, v in found.scores.items() if k != found.converter}
    if others:
        click.echo("also fits: " + ", ".join(f"{k} ({v:.1f})" for k, v in others.items()))
    if found.row is not None:
        row = dict(found.row)
        click.echo(json.dumps(row, ensure_ascii=False, indent=2, default=str))
    elif found.reject is not None:
        click.echo(f"first record rejected: {found.reject['reason']} {found.reject['detail']}".rstrip())


def _short(record: object) -> str:
    text = json.dumps(record, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:200] + "..."


@click.command("convert")
@click.argument("sources", nargs=-1)
@click.option("--from", "converter", default="auto", show_default=True, help="Converter name (see `kodolly formats`), or auto.")
@click.option("-o", "--output", type=click.Path(), help="Output: x.parquet, x.jsonl, or a folder (datasets); required unless the config file names it.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), help="Output format (default: from the output name).")
@click.option("--category", type=click.Choice(sorted(DOLLY_CATEGORIES)), help="Set every row's Dolly category.")
@click.option("--option", "-O", "options", multiple=True, metavar="KEY=VALUE", help="A converter option (repeatable).")
@click.option("--dolly-only", is_flag=True, help="Write only instruction, context, response, category.")
@click.option("--rejects", "rejects_path", type=click.Path(), help="Rejects file (default: OUTPUT.rejects.jsonl).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal only).")
@click.option("--layout", "layout", type=click.Path(dir_okay=False), help="A TOML layout file that describes the source (instead of --from).")
@click.option("--map", "mappings", multiple=True, metavar="FIELD=PATH", help="Map a row field (instruction, context, response, category, domain, score, id, meta.NAME) to a record path (repeatable; instead of --from).")
@click.option("--strict", is_flag=True, help="Without --from: stop with an error on a file no converter recognises (default: one unknown_format reject for it).")
@click.option("--engine", type=click.Choice(["inline", "processes", "ray"]), default=None, help="Where the run executes: inline (this process), processes (a local pool; default on a multi-core machine) or ray (needs kodolly[ray]). The output is the same on every engine.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (or cluster tasks) of the engine (default: cores, at most 2). The output is the same for any number.")
@click.option("--address", default=None, metavar="auto|HOST:PORT|ray://HOST:PORT", help="--engine ray: the Ray cluster to run on (default: the one `auto` finds, else a Ray started on this machine for the run).")
@click.option("--partitions", type=click.IntRange(min=1), default=None, help="--engine ray: shuffle partitions of the dedup decision, and with --format parquet and a folder output the part files per split (default: the cluster's CPUs).")
@click.option("--replay", "replay_manifest", type=click.Path(exists=True, dir_okay=False), help="Run again the run recorded in MANIFEST (its run_spec); --engine/--workers may change where it runs.")
@run_options
@limit_options
@html_report_options
def convert_command(sources, converter, output, output_format, category, options, dolly_only, rejects_path, progress, layout, mappings, strict, engine, workers, address, partitions, replay_manifest, html_report, tokenizer, **run) -> None:
    """Convert SOURCES (files, folders, globs, zips) into one Dolly-format dataset.

    Filters, exact dedup (on by default), near-dup and the split are set with the options below or
    in a run config file (--config run.toml); several inputs with different converters are read
    in one run with --input NAME:PATH or [[inputs]] in the config file.
    """
    from .. import config as run_config

    if replay_manifest:
        if sources or output or run.get("config_path"):
            raise ConfigError("--replay runs what the manifest records: give no SOURCES, -o or --config with it")
        if tokenizer:
            raise ConfigError("--replay runs what the manifest records: build a page with token counts afterwards with `kodolly report OUTPUT --tokenizer PATH`")
        _print_result(api.replay(replay_manifest, progress=progress, engine=engine, workers=workers, html_report=html_report))
        return
    if layout or mappings:
        converter = _layout_converter(converter, layout, mappings)
    overrides = cli_config(
        sources=sources, converter=converter, options=parse_options(options), category=category, output=output,
        output_format=output_format, dolly_only=dolly_only, rejects_path=rejects_path, run=run,
        engine=engine, workers=workers, engine_options={"address": address, "partitions": partitions},
        limits=given_limits(),
    )
    data = run_config.load_file(run["config_path"]) if run.get("config_path") else {}
    cfg = run_config.from_dict(run_config.merge(data, overrides), where=run.get("config_path") or "command line",
                               strict=strict, on_detect=_echo_detected)
    if cfg.output is None:
        raise ConfigError("no output: give -o/--output, or [output] path in the config file")
    _print_result(api.run_spec(cfg.spec(), progress=progress, html_report=html_report, tokenizer=tokenizer))


@click.command("report")
@click.argument("output", type=click.Path(exists=True))
@click.option("--tokenizer", type=click.Path(exists=True), default=None,
              help="A local tokenizer folder (or tokenizer.json): the page shows token counts too (loaded offline).")
def report_command(output, tokenizer) -> None:
    """Build OUTPUT's page (<out>.report.html) again from the output, its rejects, report and manifest.

    The same page the run wrote (byte for byte) unless --tokenizer adds token counts; the manifest
    records it. The page is one file that opens offline in a browser.
    """
    click.echo(f"page {api.build_html_report(output, tokenizer=tokenizer)}")


def _print_result(result) -> None:
    from ..report import format_report

    click.echo(format_report(result.report_data or {}, result.tally))
    click.echo(f"\nwrote {result.output} ({result.tally.written} rows)")
    click.echo(f"rejects {result.rejects} ({result.tally.rejected})")
    click.echo(f"manifest {result.manifest}")
    click.echo(f"report {result.report}")
    if result.report_html is not None:
        click.echo(f"page {result.report_html}")


def _layout_converter(converter: str, layout: str | None, mappings: tuple[str, ...]):
    from ..layouts import load_layout, mapped_converter

    if converter != "auto":
        raise ConfigError("use --from, --layout or --map, not several")
    if layout and mappings:
        raise ConfigError("use --layout or --map, not both (put the mapping in the layout's [fields])")
    if layout:
        return load_layout(layout)
    mapping: dict[str, str] = {}
    for pair in mappings:
        key, sep, path = pair.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise ConfigError(f"--map {pair!r}: expected FIELD=PATH, e.g. --map instruction=question")
        mapping[key.strip()] = path.strip()
    return mapped_converter(mapping)


def _echo_detected(name: str, converter: str | None) -> None:
    click.echo(f"converter: {converter or 'none fits (unknown_format)'} for {name}", err=True)


COMMANDS = [formats_command, inspect_command, convert_command, report_command]
