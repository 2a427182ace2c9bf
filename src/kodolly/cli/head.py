"""``kodolly head``: the first rows of any input or output, one JSON object a line."""

from __future__ import annotations

import json

import click

from .. import api


@click.command("head")
@click.argument("source")
@click.option("-n", "count", type=click.IntRange(min=1), default=5, show_default=True, help="How many records.")
@click.option("--from", "converter", default=None, help="Read the records as this converter does (default: detected per file).")
@click.option("--rows", is_flag=True, help="Show the converted rows (normalised, as they would be written) instead of the records.")
def head_command(source: str, count: int, converter: str | None, rows: bool) -> None:
    """Print the first records of SOURCE (a file, folder, zip, glob or hf:// source; an input or a
    kodolly output) as a converter reads them: one JSON object a line on stdout, each record's
    place (file and line or row index) on stderr before it. Rejected records are shown with their reason."""
    for item in api.head(source, count, converter, rows=rows):
        where = f"{item.file}: " + (f"line {item.line}" if item.line is not None else f"record {item.index}")
        click.echo(f"# {where}" + (f" rejected: {item.reject['reason']}" if item.reject else ""), err=True)
        payload = item.record if item.reject is None else item.reject
        click.echo(json.dumps(payload, ensure_ascii=False, default=str))


COMMANDS = [head_command]
