"""kodolly: Korean instruction data to clean, deduplicated Dolly-format datasets.

Public API::

    import kodolly
    result = kodolly.convert("ko_alpaca_data.json", "alpaca", "out.parquet")
    print(result.tally.format())
    for row in kodolly.iter_rows("kullm-v2.jsonl", "alpaca"):
        ...
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import Inspection, build_dpo, build_html_report, convert, formats, inspect_file, iter_rows, replay, run_config, to_dataset
from .api import export_dataset, publish, push
from .converters import Context, Converter, Reject
from .errors import (
    ConfigError,
    InputError,
    KodollyError,
    LfsPointerError,
    MissingExtraError,
    TallyMismatchError,
    UnknownConverterError,
)
from .io.writers import read_rows
from .layouts import load_layout, mapped_converter
from .normalize import normalize_text
from .corridor import Filter, InputGroup, RunResult, RunSpec
from .registry import get_converter, list_converters, register
from .rows import ARROW_SCHEMA, DOLLY_CATEGORIES, DOLLY_FIELDS, ROW_FIELDS, make_row
from .tally import Tally

__all__ = [
    "ARROW_SCHEMA",
    "ConfigError",
    "Context",
    "Converter",
    "DOLLY_CATEGORIES",
    "DOLLY_FIELDS",
    "Filter",
    "InputError",
    "InputGroup",
    "Inspection",
    "KodollyError",
    "LfsPointerError",
    "MissingExtraError",
    "ROW_FIELDS",
    "Reject",
    "RunResult",
    "RunSpec",
    "Tally",
    "TallyMismatchError",
    "UnknownConverterError",
    "__version__",
    "build_dpo",
    "build_html_report",
    "convert",
    "export_dataset",
    "formats",
    "get_converter",
    "inspect_file",
    "iter_rows",
    "list_converters",
    "load_layout",
    "make_row",
    "mapped_converter",
    "normalize_text",
    "publish",
    "push",
    "read_rows",
    "register",
    "replay",
    "run_config",
    "to_dataset",
]
