"""Build a Hub-ready dataset folder from a kodolly output and its manifest.

::

    FOLDER/
      README.md                               dataset card: YAML front matter + body (card.py)
      kodolly.manifest.json                   the run's manifest, paths reduced to file names (public.py)
      data/train-00000-of-00002.parquet       zstd parquet shards, bounded in rows and bytes
      data/train-00001-of-00002.parquet
      data/validation-00000-of-00001.parquet

Rows are routed to splits by their ``split`` column (absent = everything is ``train``); the column
itself is not written, since the split is what the file name and the card's ``configs`` say.
Nothing in the folder names a local path: the manifest copy, the card and each row's ``meta.file``
give inputs and outputs by file name only (``public.py``); the original manifest is not touched.
Shards are written with pyarrow (not ``datasets.to_parquet``, which ignores ``compression``), one
batch at a time, so memory does not grow with the output. The folder is built beside its final
place and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ConfigError
from ..io.batches import DEFAULT_BATCH_ROWS, iter_batches
from ..io.commit import require_finished
from ..io.writers import output_paths, write_json_atomic
from ..licenses import LicenseReport, license_report
from .public import public_manifest, scrub_meta_files

DEFAULT_MAX_SHARD_BYTES = 256 * 1024 * 1024  # in-memory Arrow bytes per shard (before compression)
ROW_GROUP_ROWS = 10_000  # small row groups keep the Hub viewer and random access fast
MANIFEST_NAME = "kodolly.manifest.json"
SPLIT_ORDER = ("train", "validation", "test")
_SPLIT_NAME = re.compile(r"^\w+$")


@dataclass
class SplitInfo:
    name: str
    rows: int = 0
    num_bytes: int = 0  # Arrow (in-memory) bytes, as ``datasets`` reports them
    file_bytes: int = 0  # parquet bytes on disk
    shards: list[str] = field(default_factory=list)


@dataclass
class FolderResult:
    """What :func:`build_folder` wrote."""

    folder: Path
    splits: dict[str, SplitInfo]
    schema: pa.Schema
    licenses: LicenseReport
    manifest: dict[str, Any]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.splits.values())


class _ShardedSplit:
    """Writes one split's rows into shards of at most ``max_rows`` rows / ``max_bytes`` Arrow bytes."""

    def __init__(self, data_dir: Path, name: str, schema: pa.Schema, max_rows: int | None, max_bytes: int) -> None:
        self.data_dir = data_dir
        self.info = SplitInfo(name)
        self.schema = schema
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_shard = 0
        self._bytes_in_shard = 0

    def write(self, table: pa.Table) -> None:
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open()
            room = table.num_rows - offset
            if self.max_rows is not None:
                room = min(room, self.max_rows - self._rows_in_shard)
            piece = table.slice(offset, room)
            assert self._writer is not None
            self._writer.write_table(piece, row_group_size=ROW_GROUP_ROWS)
            offset += piece.num_rows
            self._rows_in_shard += piece.num_rows
            self._bytes_in_shard += piece.nbytes
            self.info.rows += piece.num_rows
            self.info.num_bytes += piece.nbytes
            full_rows = self.max_rows is not None and self._rows_in_shard >= self.max_rows
            if full_rows or self._bytes_in_shard >= self.max_bytes:
                self._close_shard()

    def _open(self) -> None:
        path = self.data_dir / f".{self.info.name}-{len(self._parts):05d}.parquet.partial"
        self._parts.append(path)
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._rows_in_shard = 0
        self._bytes_in_shard = 0

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self) -> SplitInfo:
        self._close_shard()
        total = len(self._parts)
        for i, part in enumerate(self._parts):
            name = f"{self.info.name}-{i:05d}-of-{total:05d}.parquet"
            os.replace(part, self.data_dir / name)
            self.info.file_bytes += (self.data_dir / name).stat().st_size
            self.info.shards.append(f"data/{name}")
        return self.info

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # pragma: no cover - best effort while failing
                pass


def find_manifest(output: Path) -> Path:
    """``out.parquet`` -> ``out.manifest.json``; ``out/`` (datasets folder) -> ``out.manifest.json``."""
    return output_paths(output, "datasets" if output.is_dir() else None).manifest


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: manifest not found; pass --manifest (every kodolly output has one beside it)") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not a JSON manifest ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("counts"), dict) or "written" not in manifest["counts"]:
        raise ConfigError(f"{path}: not a kodolly manifest (no counts.written)")
    return manifest


def _split_order(name: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(name), "") if name in SPLIT_ORDER else (len(SPLIT_ORDER), name)


def _fallback_license(source: str, manifest: dict[str, Any]) -> str:
    """Licence of a source when the rows carry none: the registered converter's, else the manifest's."""
    from ..errors import UnknownConverterError
    from ..registry import get_converter

    try:
        lic = get_converter(source).license
    except UnknownConverterError:
        lic = ""
    if lic:
        return lic
    conv = manifest.get("converter") or {}
    if conv.get("name") == source:
        return conv.get("license") or ""
    return ""


def count_sources(table: pa.Table, counts: Counter, manifest: dict[str, Any]) -> None:
    names = table.column_names
    if "source" in names and "license" in names:
        grouped = table.group_by(["source", "license"]).aggregate([([], "count_all")])
        for src, lic, n in zip(*(grouped.column(c).to_pylist() for c in ("source", "license", "count_all"))):
            counts[(src or "", lic or "")] += n
    elif "source" in names:
        grouped = table.group_by(["source"]).aggregate([([], "count_all")])
        for src, n in zip(grouped.column("source").to_pylist(), grouped.column("count_all").to_pylist()):
            counts[(src or "", _fallback_license(src or "", manifest))] += n
    else:
        name = (manifest.get("converter") or {}).get("name", "")
        counts[(name, _fallback_license(name, manifest))] += table.num_rows


def build_folder(
    output: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    manifest_path: str | os.PathLike[str] | None = None,
    max_shard_rows: int | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    title: str | None = None,
    repo_id: str | None = None,
    overwrite: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> FolderResult:
    """Write ``folder`` (shards + README.md card + manifest copy) from a kodolly ``output``."""
    from .card import render_card

    out = Path(output)
    dest = Path(folder)
    if max_shard_rows is not None and max_shard_rows < 1:
        raise ConfigError("--max-shard-rows must be at least 1")
    if max_shard_bytes < 1:
        raise ConfigError("--max-shard-bytes must be at least 1")
    if dest.exists() and not overwrite and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"{dest}: exists and is not empty; replace it with overwrite=True (kodolly publish --overwrite)")
    if dest.resolve() == out.resolve() or out.resolve() in dest.resolve().parents:
        raise ConfigError(f"{dest}: the folder must not be (inside) the output it is built from")
    require_finished(out)  # an interrupted commit: say so, not "manifest not found"
    mpath = Path(manifest_path) if manifest_path else find_manifest(out)
    manifest = public_manifest(load_manifest(mpath))

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    data_dir = tmp / "data"
    data_dir.mkdir()
    splits: dict[str, _ShardedSplit] = {}
    counts: Counter = Counter()
    schema: pa.Schema | None = None
    try:
        for table in iter_batches(out, batch_rows):
            count_sources(table, counts, manifest)
            if "split" in table.column_names:
                split_col = table.column("split")
                table = table.drop_columns(["split"])
                if split_col.null_count:
                    raise ConfigError(f"{out}: some rows have no split (null in the split column)")
                names = pc.unique(split_col).to_pylist()
            else:
                split_col, names = None, ["train"]
            table = scrub_meta_files(table)
            if schema is None:
                schema = table.schema.remove_metadata()
            table = table.cast(schema) if table.schema.remove_metadata() != schema else table
            for name in names:
                if not _SPLIT_NAME.match(name):
                    raise ConfigError(f"{out}: split name {name!r} is not a word (letters, digits, _)")
                part = table if split_col is None or len(names) == 1 else table.filter(pc.equal(split_col, name))
                if name not in splits:
                    splits[name] = _ShardedSplit(data_dir, name, schema, max_shard_rows, max_shard_bytes)
                splits[name].write(part)
        if schema is None or not splits:
            raise ConfigError(f"{out}: the output holds no rows; nothing to publish")
        infos = {name: splits[name].finish() for name in sorted(splits, key=_split_order)}
        total = sum(i.rows for i in infos.values())
        written = manifest["counts"]["written"]
        if total != written:
            raise ConfigError(
                f"{out}: holds {total} rows but its manifest {mpath} says {written} were written; "
                "is this the manifest of this output?"
            )
        result = FolderResult(dest, infos, schema, license_report(dict(counts)), manifest)
        write_json_atomic(tmp / MANIFEST_NAME, manifest)
        (tmp / "README.md").write_text(render_card(result, title=title, repo_id=repo_id), encoding="utf-8")
        _move_into_place(tmp, dest)
    except BaseException:
        for s in splits.values():
            s.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _move_into_place(tmp: Path, dest: Path) -> None:
    os.chmod(tmp, 0o777 & ~_umask())
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
