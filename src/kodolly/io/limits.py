"""What one input may cost: the bounds every reader keeps, with their defaults.

- ``max_depth``: levels of nesting inside one record (``[1]`` is 1); deeper -> reject ``too_deep``.
  At most 255 (orjson cannot write a deeper record into the rejects file).
- ``max_record_bytes``: bytes of one record (a JSONL line, a JSON array item, a whole-file object,
  a CSV row); larger -> reject ``record_too_large``. It is also the cap on any line or item buffered.
- ``max_expansion`` / ``expansion_floor``: a zip member or gzip stream may decompress to at most
  ``max(max_expansion x its compressed size, expansion_floor)`` bytes; beyond, the member stops with
  one reject ``decompression_bomb`` and the records before it are kept.
- ``head_bytes``: how much of an over-limit record its reject keeps as raw text.

Set them per run (``kodolly convert --max-depth/--max-record-mb/--max-expansion``, the run config
file's ``[limits]`` table with the same keys, or ``kodolly.convert(..., limits=Limits(...))``) or for a
block of code with :func:`use`. The readers take the limits in force (:func:`current`); forked worker
processes inherit them.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping, NamedTuple

from ..errors import ConfigError

MAX_ORJSON_DEPTH = 255


class Limits(NamedTuple):
    max_depth: int = 128
    max_record_bytes: int = 64 << 20
    max_expansion: int = 100
    expansion_floor: int = 64 << 20
    head_bytes: int = 4096

    def checked(self) -> "Limits":
        if not 1 <= self.max_depth <= MAX_ORJSON_DEPTH:
            raise ConfigError(f"max_depth must be between 1 and {MAX_ORJSON_DEPTH}, not {self.max_depth}")
        if self.max_record_bytes < 1 or self.max_expansion < 1 or self.expansion_floor < 0:
            raise ConfigError("max_record_bytes and max_expansion must be at least 1, expansion_floor at least 0")
        return self


DEFAULT = Limits()
_current = DEFAULT

# The limits as a user sets them: the command-line options (--max-depth, --max-record-mb,
# --max-expansion) and the keys of the run config file's [limits] table; a record's size in MiB.
SETTINGS = ("max_depth", "max_record_mb", "max_expansion")


def from_settings(settings: Mapping[str, int], base: Limits = DEFAULT) -> Limits:
    """The limits of ``settings`` (keys of :data:`SETTINGS`); a setting not given keeps ``base``'s value."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"unknown input limit(s) {', '.join(unknown)}: the limits are {', '.join(SETTINGS)}")
    chosen = base._asdict()
    if "max_depth" in settings:
        chosen["max_depth"] = int(settings["max_depth"])
    if "max_record_mb" in settings:
        chosen["max_record_bytes"] = int(settings["max_record_mb"]) << 20
    if "max_expansion" in settings:
        chosen["max_expansion"] = int(settings["max_expansion"])
    return Limits(**chosen).checked()


def current() -> Limits:
    """The limits in force (the defaults unless a run set others)."""
    return _current


@contextmanager
def use(limits: Limits | Mapping[str, int] | None) -> Iterator[Limits]:
    """Make ``limits`` (a :class:`Limits`, or a mapping of its fields as a run spec stores them) the
    limits in force for the duration (``None``: leave them as they are)."""
    global _current
    previous = _current
    if limits is not None:
        _current = (limits if isinstance(limits, Limits) else Limits(**limits)).checked()
    try:
        yield _current
    finally:
        _current = previous
