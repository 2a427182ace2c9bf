"""``--max-depth``, ``--max-record-mb``, ``--max-expansion``: the input limits of one run (see
:mod:`kodolly.io.limits`), added to a command by one decorator and in force while it runs.

A command that also reads a run config file takes :func:`given_limits` (only the options given on the
command line) as its ``[limits]`` overrides, so the file's limits stand where no option replaces them."""

from __future__ import annotations

import functools
from typing import Callable

import click
from click.core import ParameterSource

from ..io import limits


def limit_options(command: Callable) -> Callable:
    """Add the limit options to a click command callback; the command runs with them in force."""
    defaults = limits.DEFAULT

    @functools.wraps(command)
    def wrapper(*args, max_depth: int, max_record_mb: int, max_expansion: int, **kwargs):
        chosen = limits.from_settings({"max_depth": max_depth, "max_record_mb": max_record_mb, "max_expansion": max_expansion})
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


def given_limits() -> dict[str, int]:
    """The limit options given on the command line of the running command (not their defaults), keyed
    as the run config file's ``[limits]`` table."""
    ctx = click.get_current_context()
    return {
        key: ctx.params[key]
        for key in limits.SETTINGS
        if ctx.get_parameter_source(key) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    }
