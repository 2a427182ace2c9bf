"""The manifest written beside every output: enough to reproduce the run and check its result.

It records the inputs (name, size, xxh3-128 of the bytes read), the converter and its options (and,
for a converter made from a layout file or ``--map``, the layout itself: its parsed content, and for
a file its path and xxh3-128), the filters and their settings, the tally, the outputs with their hashes, and the kodolly version.
It is validated against ``schemas/manifest.schema.json`` before it is written. No secret ever
goes in: options are copied from converters and filters, never from the environment.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import jsonschema

from .converters import Converter
from .io.sources import Input
from .io.writers import write_json_atomic
from .tally import Tally

MANIFEST_VERSION = 1


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped with kodolly (``dolly-row``, ``manifest``, ...)."""
    text = resources.files("kodolly").joinpath("data", "schemas", f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


def _version() -> str:
    from . import __version__

    return __version__


def build_manifest(
    *,
    inputs: Sequence[Input],
    converter: Converter,
    options: dict[str, Any],
    category: str | None,
    filters: Sequence[Any],
    tally: Tally,
    outputs: list[dict[str, Any]],
    rejects: dict[str, Any] | None,
    output_format: str,
    dolly_only: bool,
    groups: list[dict[str, Any]] | None = None,
    input_hashes: Mapping[str, tuple[int, str]] | None = None,
    run_spec: dict[str, Any] | None = None,
    shards: list[dict[str, Any]] | None = None,
    engine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest. ``converter`` describes the first (often the only) input group; ``groups``,
    when given, lists every group of the run: its converter, options, category override and inputs.
    ``input_hashes`` (name -> (bytes, xxh3-128)) overrides what an input object itself read (an input
    read whole in a worker process is hashed there). ``run_spec`` (:meth:`RunSpec.as_dict`) lets
    ``kodolly convert --replay`` run it again; ``shards`` is the plan; ``engine`` where it ran."""
    hashes = dict(input_hashes or {})

    def described(inp: Input) -> dict[str, Any]:
        size, digest = hashes.get(inp.name) or (inp.bytes_read, inp.content_hash())
        return {"name": inp.name, "bytes": size, "xxh3_128": digest}

    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "kodolly_version": _version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "inputs": [described(inp) for inp in inputs],
        "converter": {"name": converter.name, "options": options, "category_override": category, "license": options.get("license") or converter.license,
                      **layout_entry(converter)},
        "filters": [{"name": f.name, "settings": f.settings()} for f in filters],
        "output": {"format": output_format, "dolly_only": dolly_only, "files": outputs},
        "rejects": rejects,
        "counts": tally.as_dict(),
    }
    if groups is not None:
        manifest["groups"] = groups
    for key, value in (("run_spec", run_spec), ("shards", shards), ("engine", engine)):
        if value is not None:
            manifest[key] = value
    return manifest


def layout_entry(converter: Converter) -> dict[str, Any]:
    """``{"layout": {...}}`` for a converter made from a layout (see :func:`kodolly.layouts.layout_record`), else ``{}``."""
    from .layouts import layout_record

    record = layout_record(converter)
    return {"layout": record} if record is not None else {}


def validate_manifest(manifest: dict[str, Any]) -> None:
    jsonschema.validate(manifest, load_schema("manifest"))


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    validate_manifest(manifest)
    write_json_atomic(path, manifest)
