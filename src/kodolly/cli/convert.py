"""``kodolly formats``, ``kodolly inspect`` and ``kodolly convert``."""

from __future__ import annotations

import json

import click

from .. import api
from ..errors import ConfigError
from ..rows import DOLLY_CATEGORIES
from ..io.writers import FORMATS


def parse_options(pairs: tuple[str, ...]) -> dict[str, object]:
    """``KEY=VALUE`` pairs; VALUE is read as JSON when it parses (``true``, ``3``), else as text."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


@click.command("formats")
@click.option("-v", "--verbose", is_flag=True, help="Also show aliases, options and licences.")
def formats_command(verbose: bool) -> None:
    """List the converters, one line each."""
    for conv in api.formats():
        click.echo(f"{conv.name:<12} {conv.description}")
        if verbose:
            if conv.aliases:
                click.echo(f"{'':<12}   aliases: {', '.join(conv.aliases)}")
            if conv.options:
                click.echo(f"{'':<12}   options: {json.dumps(dict(conv.options), ensure_ascii=False)}")
            if conv.license:
                click.echo(f"{'':<12}   licence: {conv.license}")


@click.command("inspect")
@click.argument("file", type=click.Path(exists=True))
def inspect_command(file: str) -> None:
    """Name the converter that fits FILE and show one converted row."""
    found = api.inspect_file(file)
    if found.converter is None:
        raise ConfigError(f"{found.file}: no converter recognises this file (first record: {_short(found.record)})")
    click.echo(f"{found.file}: {found.converter}")
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
@click.argument("sources", nargs=-1, required=True)
@click.option("--from", "converter", default="auto", show_default=True, help="Converter name (see `kodolly formats`), or auto.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Output: x.parquet, x.jsonl, or a folder (datasets).")
@click.option("--format", "output_format", type=click.Choice(FORMATS), help="Output format (default: from the output name).")
@click.option("--category", type=click.Choice(sorted(DOLLY_CATEGORIES)), help="Set every row's Dolly category.")
@click.option("--option", "-O", "options", multiple=True, metavar="KEY=VALUE", help="A converter option (repeatable).")
@click.option("--dolly-only", is_flag=True, help="Write only instruction, context, response, category.")
@click.option("--rejects", "rejects_path", type=click.Path(), help="Rejects file (default: OUTPUT.rejects.jsonl).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal only).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes converting JSON Lines inputs (default: cores, at most 2). The output is the same for any number.")
def convert_command(sources, converter, output, output_format, category, options, dolly_only, rejects_path, progress, workers) -> None:
    """Convert SOURCES (files, folders, globs, zips) into one Dolly-format dataset."""
    if converter == "auto":
        converter = _auto_converter(sources[0])
    result = api.convert(
        list(sources),
        converter,
        output,
        options=parse_options(options),
        category=category,
        output_format=output_format,
        dolly_only=dolly_only,
        rejects_path=rejects_path,
        progress=progress,
        workers=workers,
    )
    click.echo(result.tally.format())
    click.echo(f"\nwrote {result.output} ({result.tally.written} rows)")
    click.echo(f"rejects {result.rejects} ({result.tally.rejected})")
    click.echo(f"manifest {result.manifest}")


def _auto_converter(source: str) -> str:
    found = api.inspect_file(source)
    if found.converter is None:
        raise ConfigError(f"{found.file}: cannot tell which converter fits; name one with --from (see `kodolly formats`)")
    click.echo(f"converter: {found.converter} (from {found.file})", err=True)
    return found.converter


COMMANDS = [formats_command, inspect_command, convert_command]
