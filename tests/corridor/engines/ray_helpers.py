"""Converters for the Ray engine tests, imported by the cluster's nodes from tests/ (the fixture puts
tests/ on their PYTHONPATH). They wrap the real ``alpaca`` converter and leave its rows unchanged:

- ``test_marked_alpaca`` (option ``markers``: a folder) writes a marker file named after the Ray node
  converting the record and sleeps a little per record, so a test can see which nodes are at work and
  remove one while the run is going;
- ``test_flaky_alpaca`` (option ``markers``) fails the first attempt at the first record of each input
  (one marker file per input), so the shard holding it succeeds only when retried, and leaves a
  ``pid-<pid>`` file per process that converted;
- ``test_broken_alpaca`` fails on record 5 every time.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from kodolly.converters.alpaca import CONVERTER as ALPACA


def _node() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except ImportError:  # pragma: no cover
        pass
    return "driver"


def _marked(record, loc, ctx):
    folder = ctx.options.get("markers")
    if folder:
        Path(folder, _node()).touch()
        time.sleep(0.002)
    yield from ALPACA.convert(record, loc, ctx)


def _flaky(record, loc, ctx):
    folder = ctx.options.get("markers")
    if folder:
        Path(folder, f"pid-{os.getpid()}").touch()  # the processes that converted, to see them end with the run
    if folder and loc.index == 0:
        marker = Path(folder, f"failed-{Path(loc.file).name}")
        if not marker.exists():
            marker.touch()
            raise RuntimeError("first attempt fails")
    yield from ALPACA.convert(record, loc, ctx)


def _broken(record, loc, ctx):
    if loc.index == 5:
        raise RuntimeError("record 5 always fails")
    yield from ALPACA.convert(record, loc, ctx)


# columnar=None: the fast path would bypass ``convert`` (same rows, but no marker, no failure)
_OPTIONS = {**ALPACA.options, "markers": ""}
MARKED = dataclasses.replace(ALPACA, name="test_marked_alpaca", aliases=(), convert=_marked, columnar=None, options=_OPTIONS)
FLAKY = dataclasses.replace(ALPACA, name="test_flaky_alpaca", aliases=(), convert=_flaky, columnar=None, options=_OPTIONS)
BROKEN = dataclasses.replace(ALPACA, name="test_broken_alpaca", aliases=(), convert=_broken, columnar=None)
