"""One commit for a run's output set: the output, its rejects, report (JSON and HTML) and manifest appear together or not at all.

POSIX has no rename of several files at once, so "together" is defined by the manifest, the commit record:

    **A set is committed when its manifest is present, no commit journal is beside it, and every file the
    manifest lists matches it. The manifest is renamed into place last, after the earlier set was removed
    (its manifest first) and the new files were renamed in; a kill at any moment leaves either the earlier
    set, nothing, or files marked unfinished by the journal — which readers refuse and the next run replaces.**

How :class:`OutputSet` does it (``out.parquet`` stands for any output; ``datasets`` folders alike):

1. ``open`` (entering the ``with``): take an exclusive lock ``.out.manifest.json.lock`` (``flock``; a second
   run on the same output fails at once with one line), so every temporary of this output that exists now is
   stale: remove them (``.out.parquet.kodolly-<token>.tmp``, and the ``.out.parquet.XXXXXXXX.tmp`` names of
   earlier kodolly versions). If the earlier set is unfinished (a journal without a matching manifest) or
   disagrees with its manifest (a file of another size, the manifest unreadable), remove it now, manifest first.
2. The run writes every file to a temporary path from :meth:`OutputSet.stage` beside its final place (same
   folder, so the renames never cross file systems), and describes each for the manifest
   (:meth:`OutputSet.describe`: final path, rows, bytes, xxh3-128 of what was staged).
3. ``commit(manifest)``, with SIGINT/SIGTERM held until it ends (:func:`kodolly.procs.held_signals`):
   check the manifest lists exactly the staged files, with the sizes and hashes they were staged with (the
   files' stats are unchanged since); stage the manifest; write the journal ``.out.manifest.json.commit``;
   remove the earlier set (manifest first, then rejects, report, HTML report, output — a folder is moved aside and
   deleted at the end), so no final name ever holds a mix of the two runs; rename the new rejects, reports and output
   into place; rename the manifest into place (**the commit point**); remove the journal.
4. On any error (``KeyboardInterrupt``, a full disk, a tally mismatch) before the commit, or when the ``with``
   block is left without a commit: every temporary is removed and the lock released; an earlier committed
   set is left untouched.

Readers (publish, export, build-dpo inputs and training read outputs through :mod:`kodolly.io.batches` and
:func:`kodolly.io.writers.read_rows`) call :func:`require_finished`: an output with a journal beside it and no
matching manifest is refused in one line. An output without a journal passes — with or without a manifest (any
parquet may be trained on; a hand-edited output is publish's row-count check's business); a run writing to
that name removes a set that disagrees with its manifest before it starts (step 1).
This protects against the process dying (kill, Ctrl-C, crash, full disk), not against a power cut: nothing
is fsynced.

Tests may set ``KODOLLY_FAULT=<step>:<KILL|INT>`` to send the process that signal at a named commit step
(:data:`COMMIT_STEPS`); nothing else reads it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError, InputError, OutputError
from ..procs import held_signals
from .writers import OutputPaths, describe_output, file_hash, json_bytes, naming_errors, output_paths

COMMIT_STEPS = ("staged", "journal", "old-manifest-removed", "old-set-removed", "renamed-rejects", "renamed-report", "renamed-report-html", "renamed-output", "manifest", "done")
_FAULT_ENV = "KODOLLY_FAULT"


def _temp_pattern(name: str) -> re.Pattern[str]:
    """Temporaries of the final name ``name``: ours (``.NAME.kodolly-<token>[.x].tmp``) and those of earlier
    kodolly versions (``.NAME.XXXXXXXX[.parquet].tmp`` from mkstemp, ``.NAME.old``)."""
    n = re.escape(name)
    return re.compile(rf"^\.{n}\.(kodolly-[0-9a-f]{{8}}(\.[\w.-]+)?\.tmp|[a-z0-9_]{{8}}(\.parquet)?\.tmp|old)$")


def journal_path(manifest: Path) -> Path:
    return manifest.with_name(f".{manifest.name}.commit")


def _lock_path(manifest: Path) -> Path:
    return manifest.with_name(f".{manifest.name}.lock")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fault(step: str) -> None:
    spec = os.environ.get(_FAULT_ENV)
    if spec and spec.rsplit(":", 1)[0] == step:
        os.kill(os.getpid(), signal.SIGKILL if spec.endswith(":KILL") else signal.SIGINT)


def describe_bytes(path: Path) -> int:
    """The size a description records: the file's, or the sum of a folder's files."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _signature(path: Path) -> Any:
    """What must not change between describing a staged file and committing it."""
    if path.is_dir():
        return sorted((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file())
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


# ------------------------------------------------------------------------------------- set state


@dataclass(frozen=True)
class SetState:
    """``committed``, ``absent`` (no manifest, no journal: nothing of kodolly's), ``unfinished`` (a journal
    without a matching manifest) or ``disagrees`` (a manifest the files do not match); ``why`` says what."""

    kind: str
    why: str = ""


def _members(paths: OutputPaths) -> list[Path]:
    return [paths.rejects, paths.report, paths.report_html, paths.output]


_SIDE_FILES = ("rejects", "report", "report_html")  # manifest keys of the set's files beside the output


def _mismatch(entry: dict[str, Any], path: Path, *, hashes: bool) -> str:
    """Why ``path`` does not match its manifest ``entry`` ("" if it does)."""
    if not path.exists():
        return f"{path} is missing"
    if "files" in entry:
        if not path.is_dir():
            return f"{path} is not a folder"
        files = {str(p.relative_to(path)): p for p in path.rglob("*") if p.is_file()}
        if set(files) != set(entry["files"]):
            return f"{path} holds other files than its manifest lists"
        if sum(p.stat().st_size for p in files.values()) != entry.get("bytes"):
            return f"{path} has another size than its manifest says"
        if hashes and any(file_hash(files[k]) != v for k, v in entry["files"].items()):
            return f"{path} has other content than its manifest says"
        return ""
    if not path.is_file():
        return f"{path} is not a file"
    if path.stat().st_size != entry.get("bytes"):
        return f"{path} has {path.stat().st_size} bytes, its manifest says {entry.get('bytes')}"
    if hashes and entry.get("xxh3_128") and file_hash(path) != entry["xxh3_128"]:
        return f"{path} has other content than its manifest says"
    return ""


def manifest_mismatch(paths: OutputPaths, *, hashes: bool = False) -> str:
    """Why the set at ``paths`` does not match its manifest ("" if it does): the output must match the
    manifest's output entry; the rejects and report must match theirs when they are there (looked up at
    ``paths`` and at the path the manifest recorded, which may be relative to another folder)."""
    try:
        manifest = orjson.loads(paths.manifest.read_bytes())
        outputs = list(manifest["output"]["files"])
        others = [(manifest[key], getattr(paths, key)) for key in _SIDE_FILES if manifest.get(key)]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return f"its manifest {paths.manifest} cannot be read ({type(exc).__name__})"
    if len(outputs) == 1:
        why = _mismatch(outputs[0], paths.output, hashes=hashes)
    else:
        named = [e for e in outputs if Path(e["path"]).name == paths.output.name]
        why = _mismatch(named[0], paths.output, hashes=hashes) if named else f"its manifest {paths.manifest} does not list {paths.output}"
    if why:
        return why
    for entry, here in others:
        for path in (here, Path(entry["path"])):
            if path.exists():
                why = _mismatch(entry, path, hashes=hashes)
                if why:
                    return why
                break
    return ""


def set_state(paths: OutputPaths, *, hashes: bool = False) -> SetState:
    """The state of the output set at ``paths`` (see :class:`SetState`)."""
    journal = journal_path(paths.manifest)
    if paths.manifest.exists():
        why = manifest_mismatch(paths, hashes=hashes)
        if not why:
            return SetState("committed")
        return SetState("unfinished" if journal.exists() else "disagrees", why)
    if journal.exists():
        return SetState("unfinished", f"its manifest {paths.manifest} is missing: the run that wrote it was stopped while committing")
    return SetState("absent")


def require_finished(output: str | os.PathLike[str]) -> None:
    """Refuse a kodolly output whose commit did not finish (one line naming it): a commit journal is beside
    it and its manifest is missing or does not match. Without a journal the output passes: kodolly never
    leaves a set that disagrees with its manifest without one (a file edited by hand, or left by a kodolly
    before this commit protocol, is the reader's own checks' business — publish compares row counts)."""
    p = Path(output)
    try:
        paths = output_paths(p, "datasets" if p.is_dir() else None)
    except ConfigError:
        return
    if not journal_path(paths.manifest).exists():
        return
    state = set_state(paths)
    if state.kind == "unfinished":
        raise InputError(f"{p}: an unfinished kodolly output ({state.why}); run the command that writes it again")


# ------------------------------------------------------------------------------------- the set


class OutputSet:
    """The files of one run's output (output, rejects, report, HTML report, manifest), staged and committed together.

    Use as ``with OutputSet(paths) as out: ... out.commit(manifest)``; see the module docstring.
    """

    def __init__(self, paths: OutputPaths) -> None:
        self.paths = paths
        self.token = secrets.token_hex(4)
        self.journal = journal_path(paths.manifest)
        self.replaced: SetState | None = None  # the state of an earlier set removed at open (unfinished / disagrees)
        self._staged: dict[Path, Path] = {}
        self._scratch: list[Path] = []
        self._seen: dict[Path, tuple[dict[str, Any], Any]] = {}
        self._lock_fd: int | None = None
        self._committed = False
        self._closed = False

    # -- lifecycle

    def __enter__(self) -> "OutputSet":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.abort()

    def open(self) -> "OutputSet":
        """Lock the output, remove its stale temporaries and an unfinished or disagreeing earlier set."""
        for path in (*_members(self.paths), self.paths.manifest):
            with naming_errors(path.parent):
                path.parent.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            with held_signals():
                self._clean_stale()
                state = set_state(self.paths)
                if state.kind in ("unfinished", "disagrees"):
                    self.replaced = state
                    for path in self._remove_final_set(fault=False) + self._journal_files():
                        _remove(path)
                    _remove(self.journal)
        except BaseException:
            self._unlock()
            raise
        return self

    def _lock(self) -> None:
        lock = _lock_path(self.paths.manifest)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        while True:
            with naming_errors(lock.parent):  # e.g. "out: permission denied" (the folder, not the hidden lock)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputError(f"{self.paths.output}: another kodolly run is writing this output") from None
            try:  # the file may have been removed by the run that held it just before we locked it
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return
            os.close(fd)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                _lock_path(self.paths.manifest).unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def _clean_stale(self) -> None:
        for final in (*_members(self.paths), self.paths.manifest, self.journal):
            pattern = _temp_pattern(final.name)
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(final.parent):
                    if pattern.match(entry.name):
                        _remove(Path(entry.path))

    def _journal_files(self) -> list[Path]:
        """The final paths an interrupted commit listed (its rejects may have gone elsewhere)."""
        try:
            return [Path(p) for p in orjson.loads(self.journal.read_bytes())["files"]]
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            return []

    def _remove_final_set(self, fault: bool = True) -> list[Path]:
        """Remove the final-named files of this set, manifest first; folders are moved aside (returned)."""
        _remove(self.paths.manifest)
        if fault:
            _fault("old-manifest-removed")
        aside = []
        for path in _members(self.paths):
            if path.is_dir() and not path.is_symlink():
                moved = path.with_name(f".{path.name}.kodolly-{self.token}.old.tmp")
                os.replace(path, moved)
                aside.append(moved)
            else:
                _remove(path)
        return aside

    # -- staging

    def stage(self, final: Path) -> Path:
        """The temporary path to write ``final`` (a member of this set) to; not created."""
        final = Path(final)
        if final not in (*_members(self.paths), self.paths.manifest):
            raise ValueError(f"{final} is not a file of this output set")
        tmp = final.with_name(f".{final.name}.kodolly-{self.token}.tmp")
        self._staged[final] = tmp
        return tmp

    def staged(self, final: Path) -> Path:
        """The temporary path ``final`` was staged at (see :meth:`stage`)."""
        return self._staged[Path(final)]

    def scratch(self, final: Path, suffix: str) -> Path:
        """An extra temporary beside ``final`` (removed at commit or abort), e.g. ``suffix=".parquet"``."""
        tmp = Path(final).with_name(f".{Path(final).name}.kodolly-{self.token}{suffix}.tmp")
        self._scratch.append(tmp)
        return tmp

    def describe(self, final: Path, rows: int, entry: dict[str, Any] | None = None) -> dict[str, Any]:
        """The manifest entry of the staged ``final`` (write and close it first). ``entry``: the description
        its writer's ``close()`` returned (taken as it is, not hashed again, once its size is checked)."""
        tmp = self._staged[Path(final)]
        signature = _signature(tmp)
        if entry is None:
            entry = describe_output(tmp, rows, name=Path(final))
        elif entry.get("path") != str(final) or entry.get("rows") != rows or describe_bytes(tmp) != entry.get("bytes"):
            raise OutputError(f"{final}: its writer described another file ({entry.get('path')}, {entry.get('rows')} rows, {entry.get('bytes')} bytes)")
        self._seen[Path(final)] = (entry, signature)
        return entry

    def write_json(self, final: Path, data: Any) -> dict[str, Any]:
        """Stage a JSON file (the report); returns its manifest entry ``{path, bytes, xxh3_128}``."""
        return self.write_bytes(final, json_bytes(data))

    def write_bytes(self, final: Path, data: bytes) -> dict[str, Any]:
        """Stage a small file (the report, the HTML report); returns its manifest entry ``{path, bytes, xxh3_128}``."""
        tmp = self.stage(final)
        with naming_errors(final):
            tmp.write_bytes(data)
        entry = describe_output(tmp, 0, name=Path(final))
        entry.pop("rows")
        self._seen[Path(final)] = (entry, _signature(tmp))
        return entry

    # -- commit

    def commit(self, manifest: dict[str, Any]) -> None:
        """Verify the staged files against ``manifest`` and make the set visible, manifest last."""
        if self._closed:
            raise RuntimeError("the output set is closed")
        listed = list(manifest["output"]["files"]) + [manifest[k] for k in _SIDE_FILES if manifest.get(k)]
        by_path = {Path(e["path"]): e for e in listed}
        staged = set(self._staged) - {self.paths.manifest}
        if set(by_path) != staged:
            raise OutputError(
                f"{self.paths.manifest}: the manifest lists {sorted(map(str, by_path))}, the run staged {sorted(map(str, staged))}"
            )
        for final, entry in by_path.items():
            seen = self._seen.get(final)
            if seen is None or _signature(self._staged[final]) != seen[1] or any(entry.get(k) != seen[0].get(k) for k in ("bytes", "xxh3_128", "files")):
                raise OutputError(f"{final}: changed after it was described for the manifest")
        with held_signals():
            _fault("staged")
            tmp_manifest = self.stage(self.paths.manifest)
            with naming_errors(self.paths.manifest):
                tmp_manifest.write_bytes(json_bytes(manifest))
                tmp_journal = self.journal.with_name(f".{self.journal.name}.kodolly-{self.token}.tmp")
                tmp_journal.write_bytes(orjson.dumps({"token": self.token, "files": [os.path.abspath(p) for p in (*staged, self.paths.manifest)]}))
                os.replace(tmp_journal, self.journal)
            _fault("journal")
            aside = []
            try:
                aside = self._remove_final_set()
                _fault("old-set-removed")
                for final, step in ((self.paths.rejects, "rejects"), (self.paths.report, "report"), (self.paths.report_html, "report-html"),
                                    (self.paths.output, "output")):
                    if final in self._staged:
                        with naming_errors(final):
                            os.replace(self._staged[final], final)
                        _fault(f"renamed-{step}")
                with naming_errors(self.paths.manifest):
                    os.replace(tmp_manifest, self.paths.manifest)
                self._committed = True
                _fault("manifest")
                _remove(self.journal)
                _fault("done")
            finally:
                for path in aside:
                    _remove(path)

    def abort(self) -> None:
        """Remove every temporary and release the lock; a committed set stays. Idempotent, never raises."""
        if self._closed:
            return
        self._closed = True
        with held_signals():
            for path in (*self._staged.values(), *self._scratch):
                with contextlib.suppress(Exception):
                    _remove(path)
            with contextlib.suppress(Exception):
                self._unlock()

    @property
    def committed(self) -> bool:
        return self._committed


def refresh_member(paths: OutputPaths, final: Path, key: str, data: bytes) -> bool:
    """Replace one side file of a committed set (the HTML report that ``kodolly report`` builds again) and
    its manifest entry ``key``; returns False when the file and its entry already are ``data``.

    Under the set's lock and with SIGINT/SIGTERM held: the file is renamed into place, then the manifest
    with the new entry (the output, rejects and report are not touched). Only a SIGKILL between the two
    renames leaves the set disagreeing with its manifest, which the next run writing it replaces.
    """
    from .writers import describe_output

    final = Path(final)
    out = OutputSet(paths)
    out.open()
    try:
        manifest = orjson.loads(paths.manifest.read_bytes())
        entry = manifest.get(key)
        if entry and final.is_file() and final.read_bytes() == data and not _mismatch(entry, final, hashes=True):
            return False
        tmp = out.stage(final)
        with naming_errors(final):
            tmp.write_bytes(data)
        new = describe_output(tmp, 0, name=final)
        new.pop("rows")
        manifest[key] = new
        from ..manifest import validate_manifest

        validate_manifest(manifest)
        tmp_manifest = out.stage(paths.manifest)
        with naming_errors(paths.manifest):
            tmp_manifest.write_bytes(json_bytes(manifest))
        with held_signals():
            with naming_errors(final):
                os.replace(tmp, final)
            with naming_errors(paths.manifest):
                os.replace(tmp_manifest, paths.manifest)
        return True
    finally:
        out.abort()


__all__ = ["COMMIT_STEPS", "OutputSet", "SetState", "journal_path", "manifest_mismatch", "refresh_member", "require_finished", "set_state"]
