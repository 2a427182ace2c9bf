"""Turn what the user names (files, directories, globs, zip archives, split zips, gzip) into inputs.

An :class:`Input` is one logical file: a plain file, a ``.gz`` file (read decompressed), or one
member of a zip archive (read in place, never extracted). Each input knows how to open itself as a
binary stream and hashes its bytes as they are read, so the manifest gets a content hash without a
second pass over multi-GB files.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import xxhash

from ..errors import DecompressionBombError, InputError, LfsPointerError
from . import hub_source, tables
from . import limits as limits_mod

DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv") + tables.COLUMNAR_SUFFIXES
ARCHIVE_SUFFIXES = (".zip",)
LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
_SKIP_MEMBER_PARTS = ("__MACOSX/",)
_SKIP_MEMBER_NAMES = (".DS_Store", "Thumbs.db")


@dataclass
class Input:
    """One logical input file."""

    name: str  # what the user sees in messages and rejects: "a/b.json" or "a.zip!dir/b.json"
    open_raw: Callable[[], BinaryIO] = field(repr=False)
    size: int | None = None
    hasher: xxhash.xxh3_128 = field(default_factory=xxhash.xxh3_128, repr=False)
    bytes_read: int = 0
    packed_read: int = 0  # a .gz file: how far into the compressed file the last read got (progress)
    packed_size: int | None = None  # compressed bytes behind it (a zip member, a .gz file): the bomb guard
    # (reason, detail) when the input is rejected whole without being read: it is one reject
    rejected: tuple[str, str] | None = None
    path: str | None = None  # the plain file behind it, when its name is not that path (hf:// files)
    origin: dict | None = None  # where it was downloaded from (hf:// repo, commit, path, hash, card licence)
    digest: str | None = field(default=None, repr=False)  # its hash when another process read it (read_elsewhere)

    @property
    def compressed(self) -> bool:
        return self.packed_size is not None or self.name.lower().endswith(".gz")

    @property
    def data_name(self) -> str:
        """The file name that decides the format (``x.jsonl.gz`` -> ``x.jsonl``)."""
        return data_name(self.name)

    @property
    def suffix(self) -> str:
        return data_suffix(self.name)

    def open(self) -> BinaryIO:
        """Open for reading; the bytes read are hashed. Raises :class:`LfsPointerError` on a pointer."""
        try:
            raw = self.open_raw()
        except RuntimeError as exc:  # zipfile: "File x is encrypted, password required for extraction"
            raise InputError(f"{self.name}: cannot read this archive member: {exc}") from exc
        except (zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
            raise InputError(f"{self.name}: cannot read this archive member ({exc})") from exc
        packed = self.packed_size
        if self.name.lower().endswith(".gz"):
            if packed is None:
                packed = os.path.getsize(self.name) if os.path.isfile(self.name) else None
            raw = _GzipWithPosition(raw, self)  # type: ignore[assignment]
        budget = None
        if packed is not None:
            lim = limits_mod.current()
            budget = max(lim.max_expansion * packed, lim.expansion_floor)
        stream = io.BufferedReader(_HashingReader(raw, self, budget, packed), buffer_size=1 << 20)
        if stream.peek(len(LFS_MAGIC))[: len(LFS_MAGIC)] == LFS_MAGIC:
            stream.close()
            raise LfsPointerError(self.name)
        return stream

    def content_hash(self) -> str:
        return self.digest if self.digest is not None else self.hasher.hexdigest()

    def read_elsewhere(self, nbytes: int, digest: str) -> None:
        """Another process read this input through (e.g. a reader process planning a zip member): its
        byte count and hash, as :meth:`content_hash` gives them."""
        self.bytes_read, self.digest = nbytes, digest

    def __reduce__(self):
        """An input pickles as what names it (so it can be sent to a worker process, which opens it
        again): its name, or for a Hub file the repo at the resolved commit."""
        return (_reopen, (self.name, self.rejected, self.origin, self.path))


def _reopen(name: str, rejected: tuple[str, str] | None, origin: dict | None, path: str | None = None) -> "Input":
    """The input called ``name`` (a file, ``ARCHIVE!MEMBER``, a Hub file), opened again (a Hub file
    whose downloaded copy is on this machine: from that copy, no request sent)."""
    if origin and origin.get("hub") and path and "!" not in name and os.path.isfile(path):
        return Input(name=name, open_raw=lambda: open(path, "rb"), size=os.path.getsize(path), rejected=rejected,
                     path=path, origin=origin)
    if origin and origin.get("hub"):
        candidates = expand_inputs([f"hf://datasets/{origin['hub']}@{origin['commit']}/{origin['path']}"])
    elif "!" in name:
        archive = name.split("!", 1)[0]
        if hub_source.is_hub_url(archive):
            candidates = expand_inputs([archive])
        else:
            first = Path(archive) if Path(archive).is_file() else Path(archive + ".part0")
            candidates = list(_file_inputs(first, set()))
    else:
        candidates = expand_inputs([name])
    member = name.split("!", 1)[1] if "!" in name else None
    for candidate in candidates:
        same = candidate.name == name
        if origin and origin.get("hub"):  # named at the commit now: the same file, and the same member
            same = member is None or candidate.name.split("!", 1)[-1] == member
        if same:
            candidate.name, candidate.rejected = name, rejected
            candidate.origin = origin if origin else candidate.origin
            return candidate
    raise InputError(f"{name}: no longer there")


def data_name(name: str) -> str:
    """The file name in an input's name that decides its format (``a.zip!x.jsonl.gz`` -> ``x.jsonl``)."""
    base = name.rsplit("!", 1)[-1]
    return base[:-3] if base.lower().endswith(".gz") else base


def data_suffix(name: str) -> str:
    """The format's suffix of an input's name (``x.csv.gz`` -> ``.csv``)."""
    return os.path.splitext(data_name(name))[1].lower()


class _GzipWithPosition(gzip.GzipFile):
    """A gzip reader that records in its input how far into the compressed file it has read, so the
    progress bar counts a stream shard of a ``.gz`` in the file's bytes as its total does."""

    def __init__(self, raw: BinaryIO, owner: Input) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._file, self._owner = raw, owner
        owner.packed_read = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        try:
            self._owner.packed_read = self._file.tell()
        except (OSError, ValueError):  # a stream without a position: the bar counts it when it is done
            pass
        return data


class _HashingReader(io.RawIOBase):
    """Hashes and counts the bytes read; turns a damaged archive or gzip into one :class:`InputError`
    naming the input, and stops a decompression bomb after ``budget`` bytes."""

    def __init__(self, raw: BinaryIO, owner: Input, budget: int | None = None, packed: int | None = None) -> None:
        self._raw = raw
        self._owner = owner
        self._budget = budget
        self._packed = packed
        self._owner.hasher.reset()
        self._owner.bytes_read = 0
        self._owner.digest = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        owner = self._owner
        if self._budget is not None and owner.bytes_read >= self._budget:
            lim = limits_mod.current()
            raise DecompressionBombError(
                f"{owner.name}: stopped after {owner.bytes_read:,} decompressed bytes from {self._packed:,} compressed "
                f"(more than {lim.max_expansion}x; raise --max-expansion if the data is real)"
            )
        want = len(buffer) if self._budget is None else min(len(buffer), self._budget - owner.bytes_read)
        try:
            data = self._raw.read(want)
        except EOFError as exc:  # gzip: "Compressed file ended before the end-of-stream marker was reached"
            raise InputError(f"{owner.name}: truncated compressed data ({exc})") from exc
        except (zipfile.BadZipFile, zlib.error, gzip.BadGzipFile) as exc:
            raise InputError(f"{owner.name}: corrupt compressed data ({exc})") from exc
        n = len(data)
        buffer[:n] = data
        if n:
            self._owner.hasher.update(data)
            self._owner.bytes_read += n
        return n

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class JoinedParts(io.RawIOBase):
    """A seekable read-only view of ``x.zip.part0``, ``x.zip.part1``, ... as one file."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._sizes = [p.stat().st_size for p in paths]
        self._starts = [sum(self._sizes[:i]) for i in range(len(paths))]
        self._total = sum(self._sizes)
        self._pos = 0
        self._files = [open(p, "rb") for p in paths]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        want = len(buffer)
        done = 0
        while done < want and self._pos < self._total:
            i = max(j for j, start in enumerate(self._starts) if start <= self._pos)
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            chunk = f.read(min(want - done, self._starts[i] + self._sizes[i] - self._pos))
            if not chunk:
                break
            buffer[done : done + len(chunk)] = chunk
            done += len(chunk)
            self._pos += len(chunk)
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """A zip member's name, decoding cp949 names stored without the UTF-8 flag."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for encoding in ("utf-8", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _split_parts(path: Path) -> list[Path]:
    """``x.zip.part0`` -> every ``x.zip.partN`` beside it, in numeric order (gaps are an error)."""
    stem = path.name.rsplit(".part", 1)[0]
    parts = sorted(
        (p for p in path.parent.glob(glob.escape(stem) + ".part*") if _is_split_part(p)),  # not x.zip.part1.bak
        key=lambda p: int(p.name.rsplit(".part", 1)[1]),
    )
    numbers = [int(p.name.rsplit(".part", 1)[1]) for p in parts]
    if numbers[0] != 0:
        raise InputError(f"{path.parent / (stem + '.part0')}: the first part of this split archive is missing (found {', '.join(p.name for p in parts)})")
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise InputError(f"{path}: split archive parts are not contiguous: {[p.name for p in parts]}")
    return parts


def _is_split_part(path: Path) -> bool:
    name = path.name.lower()
    if ".zip.part" not in name:
        return False
    return name.rsplit(".part", 1)[1].isdigit()


def _zip_inputs(display: str, opener: Callable[[], BinaryIO]) -> Iterator[Input]:
    try:
        archive = zipfile.ZipFile(opener())
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise InputError(f"{display}: not a readable zip archive ({exc})") from exc
    members = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = decode_member_name(info)
        if any(part in name for part in _SKIP_MEMBER_PARTS) or os.path.basename(name) in _SKIP_MEMBER_NAMES:
            continue
        members.append((name, info))
    for name, info in sorted(members, key=lambda m: m[0]):
        lowered = name.lower()
        if lowered.endswith(".gz"):
            lowered = lowered[:-3]
        if not lowered.endswith(DATA_SUFFIXES):
            continue
        yield Input(
            name=f"{display}!{name}",
            open_raw=(lambda info=info: archive.open(info)),
            size=info.file_size,
            packed_size=info.compress_size,
        )


def _file_inputs(path: Path, seen_split_sets: set[Path]) -> Iterator[Input]:
    lowered = path.name.lower()
    if _is_split_part(path):
        parts = _split_parts(path)
        if parts[0] in seen_split_sets:
            return  # the set is read once, whichever of its parts were named
        seen_split_sets.add(parts[0])
        display = str(parts[0]).rsplit(".part", 1)[0]
        yield from _zip_inputs(display, lambda: JoinedParts(parts))
    elif lowered.endswith(ARCHIVE_SUFFIXES):
        yield from _zip_inputs(str(path), lambda: open(path, "rb"))
    else:
        yield Input(name=str(path), open_raw=lambda: open(path, "rb"), size=path.stat().st_size)


def _is_data_file(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(DATA_SUFFIXES + ARCHIVE_SUFFIXES) or _is_split_part(path)


def _hub_inputs(text: str) -> list[Input]:
    """The inputs of an ``hf://datasets/...`` source: its files downloaded into the Hub cache
    (:mod:`kodolly.io.hub_source`), named by their place in the repo."""
    inputs: list[Input] = []
    for hub_file in hub_source.fetch(text, is_data_file=lambda p: _is_data_file(Path(p))):
        local = Path(hub_file.local_path)
        if local.name.lower().endswith(ARCHIVE_SUFFIXES):
            members = list(_zip_inputs(hub_file.name, lambda local=local: open(local, "rb")))
        else:
            members = [Input(name=hub_file.name, open_raw=lambda local=local: open(local, "rb"), size=hub_file.size, path=str(local))]
        for member in members:
            member.origin = hub_file.origin
        inputs.extend(members)
    return inputs


def _dir_files(root: Path) -> list[Path]:
    """The data files under a folder, sorted; a ``datasets`` folder gives its Arrow files instead
    of its metadata JSON (see :mod:`kodolly.io.tables`)."""
    if tables.is_datasets_folder(root):
        return tables.datasets_folder_files(root)
    snapshot = hub_source.cached_snapshot(root)
    if snapshot is not None:  # a repo in huggingface_hub's cache: one commit's files
        return _dir_files(snapshot)
    files: list[Path] = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            files.extend(_dir_files(entry))
        elif entry.is_file() and _is_data_file(entry):
            if entry.name == "dataset_dict.json" and any(tables.is_datasets_folder(d) for d in root.iterdir()):
                continue  # a DatasetDict's list of splits; the splits are read from their folders
            files.append(entry)
    return files


def expand_inputs(specs: list[str | os.PathLike[str] | Input]) -> list[Input]:
    """Files, directories (walked recursively, sorted), globs and archives -> inputs, in a stable order.

    A named file is taken whatever its suffix; inside directories and globs only data files
    (json, jsonl, ndjson, csv, tsv, their ``.gz``, zips and split zip parts) are taken.
    """
    inputs: list[Input] = []
    seen_split_sets: set[Path] = set()
    for spec in specs:
        if isinstance(spec, Input):  # already expanded (e.g. by per-file detection)
            inputs.append(spec)
            continue
        text = os.fspath(spec)
        if "!" in text and not os.path.exists(text):  # ARCHIVE!MEMBER: one member (an input's name)
            inputs.append(_reopen(text, None, None))
            continue
        if hub_source.is_hub_url(text):
            inputs.extend(_hub_inputs(text))
            continue
        path = Path(text)
        if path.is_dir():
            files = _dir_files(path)
        elif path.is_file():
            files = [path]
        elif glob.has_magic(text):
            files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file() and _is_data_file(Path(p)))
            if not files:
                raise InputError(f"{text}: the pattern matches no data files")
        else:
            raise InputError(f"{text}: no such file or directory")
        for file in files:
            inputs.extend(_file_inputs(file, seen_split_sets))
    if not inputs:
        raise InputError(f"no input files found in {', '.join(map(os.fspath, specs))}")
    return inputs
