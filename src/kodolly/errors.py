"""kodolly's exceptions: one tree, mapped to messages and exit codes in one place (``kodolly.cli``).

::

    KodollyError                   run-level problem: the run stops with one clear line
    ├── InputError                 an input cannot be read at all (missing, unreadable archive, ...)
    │   ├── LfsPointerError        a Git-LFS pointer file stands where the data should be
    │   ├── DecompressionBombError a zip member or gzip stream expands beyond the limit (readers turn
    │   │                          it into one ``decompression_bomb`` reject and keep what came before)
    │   └── HubSourceError         an hf:// source cannot be read (missing, gated, token refused, Hub down)
    ├── OutputError                an output cannot be written (disk full, ...) or is in use by another run
    ├── UnknownConverterError      no converter by that name (the message lists the known ones)
    ├── ConfigError                a bad option, layout or config file
    ├── MissingExtraError          an optional dependency is not installed (names the extra)
    ├── TallyMismatchError         read != written + rejected: something was lost
    ├── ShardError                 a shard of the input failed twice (names the input and the shard)
    ├── LicenseError               a source's licence forbids what was asked (public push)
    └── PushError                  an upload to the Hub failed (after retrying transient errors)

Record-level problems are not exceptions: they become rejects with a reason.
"""

from __future__ import annotations


class KodollyError(Exception):
    """Base of every error kodolly raises on purpose."""

    exit_code = 1


class InputError(KodollyError):
    """An input file, directory, glob or archive cannot be read."""


class LfsPointerError(InputError):
    """A Git-LFS pointer file was found instead of the data it points to."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path}: this is a Git-LFS pointer file, not the data. "
            "Fetch the real file first (git lfs pull, or download it from the dataset page)."
        )
        self.path = path


class DecompressionBombError(InputError):
    """A compressed input decompressed to more than ``max_expansion`` times its compressed size."""


class HubSourceError(InputError):
    """An ``hf://datasets/...`` source cannot be listed or downloaded (the message never holds the token)."""


class OutputError(KodollyError):
    """An output cannot be written (the message names the file: disk full, no permission, ...), or
    another run is writing the same output."""


class UnknownConverterError(KodollyError):
    exit_code = 2

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown converter {name!r}; known converters: {', '.join(sorted(known))}")
        self.name = name
        self.known = known


class ConfigError(KodollyError):
    exit_code = 2


class MissingExtraError(KodollyError):
    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install -e '.[{extra}]' (from the kodolly clone)"
        )
        self.package = package
        self.extra = extra


class TallyMismatchError(KodollyError):
    exit_code = 3


class ShardError(KodollyError):
    """A shard failed twice (a worker crash, a corrupt zip member, a converter bug): the run stops.

    The message names the input and the shard and carries the last line of the cause."""


class LicenseError(KodollyError):
    """A public push of a set whose sources forbid derivatives, redistribution or commercial use."""

    exit_code = 4


class ExportCheckError(KodollyError):
    """``kodolly export --check``: the trainer would load a row empty or with a wrong role."""

    exit_code = 1


class PushError(KodollyError):
    """The Hub refused or failed an upload (the message never holds the token)."""

    exit_code = 5


def one_line(exc: BaseException) -> str:
    """An error in one line: its first line; for one that only introduces a traceback or a list
    ("...failure from server:"), that text's last line too (what actually failed)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


def require(module: str, extra: str):
    """Import an optional dependency or fail with the ``pip install`` line that fixes it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingExtraError(module.split(".")[0], extra) from exc
