"""``--max-depth``, ``--max-record-mb``, ``--max-expansion``: the input limits of one run (see
:mod:`kodolly.io.limits`), added to a command by one decorator and in force while it runs."""

from __future__ import annotations

import functools
from typing import Callable

import click

from ..io import limits


def limit_options(command: Callable) -> Callable:
    """Add the limit options to a click command callback; the command runs with them in force."""
    defaults = limits.DEFAULT

    @functools.wraps(command)
    def wrapper(*args, max_depth: int, max_record_mb: int, max_expansion: int, **kwargs):
        chosen = limits.Limits(max_depth=max_depth, max_record_bytes=max_record_mb << 20, max_expansion=max_expansion)
        with limits.use(chosen):
            return command(*args, **kwargs)

    for option in reversed([
        click.option("--max-depth", type=click.IntRange(1, limits.MAX_ORJSON_DEPTH), default=defaults.max_depth, show_default=True,
                     help="Deepest nesting of one record; deeper records are rejected (too_deep)."),
        click.option("--max-record-mb", type=click.IntRange(min=1), default=defaults.max_record_bytes >> 20, show_default=True,
                     help="Largest record (JSONL line, JSON item, CSV field) in MiB; larger ones are rejected (record_too_large)."),
        click.option("--max-expansion", type=click.IntRange(min=1), default=defaults.max_expansion, show_default=True,
                     help="A zip member or .gz may decompress to this many times its compressed size (at least "
                          f"{defaults.expansion_floor >> 20} MiB); beyond, it stops with a decompression_bomb reject."),
    ]):
        wrapper = option(wrapper)
    return wrapper
