"""The old home of the run core, kept so existing imports work: everything here is in :mod:`kodolly.corridor`.

``from kodolly.pipeline import InputGroup`` (as earlier READMEs showed) keeps working; new code imports from
``kodolly`` (``kodolly.InputGroup``, ``kodolly.convert``) or :mod:`kodolly.corridor`.
"""

from __future__ import annotations

from typing import Any, Sequence

from .corridor import Filter, InputGroup, RunResult, reject_record

__all__ = ["Filter", "InputGroup", "RunResult", "reject_record", "run"]


def run(sources: Sequence[Any], converter: Any, output: Any = None, *, filters: Sequence[Any] = (), **kwargs: Any) -> RunResult:
    """The old ``pipeline.run``: like :func:`kodolly.convert`, with its old default of no filters."""
    from .api import convert

    return convert(list(sources), converter, output, filters=list(filters), **kwargs)
