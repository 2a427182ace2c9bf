"""The Hugging Face Hub as a source: ``hf://datasets/OWNER/NAME[@REVISION][/PATH-OR-GLOB]``.

The repo's revision (default ``main``) is resolved to its commit once (``dataset_info``: sha,
card data), its files are listed at that commit (``list_repo_tree``: paths, sizes, git blob ids,
LFS sha256), and only the files asked for (and the card, ``README.md``) are downloaded with ``hf_hub_download`` into
huggingface_hub's own cache (``HF_HOME`` / ``HF_HUB_CACHE``); a file already there is not
downloaded again. Without a path every data file of the repo is taken (the suffixes kodolly reads;
``README.md`` and ``.gitattributes`` are not data). A path names a file or a folder; a glob
(``data/train-*.parquet``) is matched against the repo's paths.

``HF_ENDPOINT`` points at another Hub (a mirror, an enterprise Hub, a test server); the token is
``HF_TOKEN`` or the one ``hf auth login`` saved (``huggingface_hub.get_token``), never printed.
With ``HF_HUB_OFFLINE`` set nothing is requested: a commit already in the cache is read (named
``@SHA``, as the manifest records it, or a revision whose ref ``hf download`` left in the cache).

What the run needs to be reproducible travels with each downloaded file (:class:`HubFile`): the
repo, the revision asked for, the resolved commit, the path and its hash (LFS sha256, else the git
blob id); the manifest records it. ``license`` is the dataset card's licence, used when the user
names none.

A missing repo, a gated or private one without access, a missing or refused token (401/403/404)
stops the run with one line naming the repo and what to do; a dropped connection, a timeout or a
5xx is retried with backoff, then stops with one line.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

from ..errors import HubSourceError, InputError, require

PREFIX = "hf://"
RETRIES = 4
RETRY_WAIT = 1.0


@dataclass(frozen=True)
class HubSpec:
    """A parsed ``hf://datasets/OWNER/NAME[@REVISION][/PATH-OR-GLOB]``."""

    repo_id: str
    revision: str | None = None
    path: str = ""

    @property
    def url(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"hf://datasets/{self.repo_id}{rev}"


@dataclass(frozen=True)
class HubFile:
    """One downloaded file: where it is in the cache, and what the manifest records about it."""

    name: str  # what messages and rows show: hf://datasets/OWNER/NAME[@REV]/PATH
    local_path: str
    size: int
    origin: dict[str, Any]


def is_hub_url(text: str) -> bool:
    return text.startswith(PREFIX)


def parse(text: str) -> HubSpec:
    """``hf://datasets/OWNER/NAME[@REVISION][/PATH]`` -> :class:`HubSpec` (a revision with ``/``
    in it is written URL-encoded: ``@refs%2Fconvert%2Fparquet``)."""
    rest = text[len(PREFIX):]
    kind, _, rest = rest.partition("/")
    if kind != "datasets":
        raise InputError(f"{text}: only dataset repos can be read: hf://datasets/OWNER/NAME[@REVISION][/PATH-OR-GLOB]")
    parts = rest.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise InputError(f"{text}: expected hf://datasets/OWNER/NAME[@REVISION][/PATH-OR-GLOB]")
    owner, name = parts[0], parts[1]
    revision = None
    if "@" in name:
        name, _, revision = name.partition("@")
        revision = unquote(revision) or None
    path = parts[2].strip("/") if len(parts) > 2 else ""
    return HubSpec(f"{owner}/{name}", revision, path)


def hub_token() -> str | None:
    """``HF_TOKEN``, else the token ``hf auth login`` saved (huggingface_hub's own lookup)."""
    hub = require("huggingface_hub", "hub")
    return hub.get_token() or None


def scrub(text: str, token: str | None) -> str:
    """``text`` with the token's value masked (for messages; URL-encoded and split forms too)."""
    from ..scrub import scrub_secret

    return scrub_secret(text, token, "<HF_TOKEN>")


def card_license(card_data: Any) -> str:
    """The licence a dataset card's YAML names (``license: cc-by-nc-4.0``), as kodolly writes
    licences (``CC BY-NC 4.0``); several are joined with ``; ``; ``""`` when the card names none."""
    from ..licenses import from_hub_id

    if card_data is None:
        return ""
    value = card_data.get("license") if hasattr(card_data, "get") else getattr(card_data, "license", None)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ""
    return "; ".join(from_hub_id(v) for v in value if isinstance(v, str) and v.strip())


def fetch(
    text: str,
    *,
    is_data_file: Callable[[str], bool],
    retries: int | None = None,
    retry_wait: float | None = None,
) -> list[HubFile]:
    """Download the files ``text`` names (see the module docstring) and describe each."""
    hub = require("huggingface_hub", "hub")
    spec = parse(text)
    if hub.constants.is_offline_mode():
        return _fetch_cached(hub, spec, text, is_data_file)
    token = hub_token()
    endpoint = os.environ.get("HF_ENDPOINT") or None
    api = hub.HfApi(endpoint=endpoint, token=token or False, library_name="kodolly")
    retrying = _Retrying(spec, token, RETRIES if retries is None else retries, RETRY_WAIT if retry_wait is None else retry_wait)

    info = retrying("repo info", lambda: api.dataset_info(spec.repo_id, revision=spec.revision))
    sha = info.sha
    license = card_license(getattr(info, "card_data", None))
    tree = retrying("file list", lambda: list(api.list_repo_tree(spec.repo_id, repo_type="dataset", revision=sha, recursive=True)))
    files = {f.path: f for f in tree if hasattr(f, "blob_id") and hasattr(f, "size")}
    chosen = _select(spec, text, sorted(files), is_data_file)

    def download(path: str) -> str:
        return retrying(f"download {path}", lambda: hub.hf_hub_download(
            spec.repo_id, path, repo_type="dataset", revision=sha, endpoint=endpoint, token=token or False))

    if "README.md" in files:
        download("README.md")  # the card (small): an offline run of this commit still knows the licence
    out = []
    for path in chosen:
        entry = files[path]
        local = download(path)
        lfs = getattr(entry, "lfs", None)
        origin = {
            "hub": spec.repo_id,
            "revision": spec.revision or "main",
            "commit": sha,
            "path": path,
            **({"sha256": lfs.sha256} if lfs is not None else {"git_blob": entry.blob_id}),
            "license": license,
        }
        out.append(HubFile(f"{spec.url}/{path}", local, int(entry.size), origin))
    return out


_COMMIT = re.compile(r"[0-9a-f]{40}")


def _fetch_cached(hub: Any, spec: HubSpec, text: str, is_data_file: Callable[[str], bool]) -> list[HubFile]:
    """``HF_HUB_OFFLINE``: the files of a commit already in huggingface_hub's cache, no request sent.
    The commit is the revision when it is one (as the manifest records it), else what the cache's
    ``refs/REVISION`` names (``hf download`` writes it)."""
    from pathlib import Path

    storage = Path(hub.constants.HF_HUB_CACHE) / ("datasets--" + spec.repo_id.replace("/", "--"))
    revision = spec.revision or "main"
    ref = storage / "refs" / revision
    sha = revision if _COMMIT.fullmatch(revision) else (ref.read_text("utf-8").strip() if ref.is_file() else "")
    snapshot = storage / "snapshots" / sha if sha else None
    if snapshot is None or not snapshot.is_dir():
        raise HubSourceError(f"{spec.url}: HF_HUB_OFFLINE is set and revision {revision!r} is not in the Hub cache; "
                             "download it first (unset HF_HUB_OFFLINE), or name a cached commit with @SHA")
    local = {p.relative_to(snapshot).as_posix(): p for p in sorted(snapshot.rglob("*")) if p.is_file()}
    readme = local.get("README.md")
    license = card_license(hub.DatasetCard.load(readme).data) if readme is not None else ""
    out = []
    for path in _select(spec, text, sorted(local), is_data_file):
        blob = os.path.basename(os.readlink(local[path])) if local[path].is_symlink() else ""
        digest = {"sha256": blob} if len(blob) == 64 else {"git_blob": blob} if blob else {}
        origin = {"hub": spec.repo_id, "revision": revision, "commit": sha, "path": path, **digest, "license": license}
        out.append(HubFile(f"{spec.url}/{path}", str(local[path]), local[path].stat().st_size, origin))
    return out


def _select(spec: HubSpec, text: str, paths: list[str], is_data_file: Callable[[str], bool]) -> list[str]:
    from .tables import DATASETS_META_FILES

    def wanted(path: str) -> bool:
        # a datasets folder pushed as files: its Arrow files are the data, its metadata JSON is not
        return is_data_file(path) and path.rsplit("/", 1)[-1] not in DATASETS_META_FILES

    if not spec.path:
        chosen = [p for p in paths if wanted(p)]
        what = "no data files (json, jsonl, csv, parquet, arrow, zip, ...)"
    elif globlib.has_magic(spec.path):
        chosen = [p for p in paths if fnmatch.fnmatchcase(p, spec.path)]
        what = f"no file matching {spec.path}"
    elif spec.path in paths:
        chosen = [spec.path]
        what = ""
    else:
        chosen = [p for p in paths if p.startswith(spec.path + "/") and wanted(p)]
        what = f"no file or data folder {spec.path}"
    if not chosen:
        shown = ", ".join(paths[:8]) + (", ..." if len(paths) > 8 else "")
        raise HubSourceError(f"{text}: {what} in the repo at this revision (its files: {shown or 'none'})")
    return chosen


class _Retrying:
    """Run one Hub call, retrying transient failures; anything else is one line naming the repo."""

    def __init__(self, spec: HubSpec, token: str | None, retries: int, wait: float) -> None:
        self.spec, self.token, self.retries, self.wait = spec, token, retries, wait

    def __call__(self, step: str, fn: Callable[[], Any]) -> Any:
        from ..hub.push import is_transient

        for attempt in range(self.retries + 1):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as one line
                if attempt < self.retries and is_transient(exc):
                    time.sleep(self.wait * (2**attempt))
                    continue
                raise HubSourceError(self._message(step, exc, attempt + 1)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _message(self, step: str, exc: Exception, tries: int) -> str:
        from ..hub.push import is_transient

        name = type(exc).__name__
        status = getattr(getattr(exc, "response", None), "status_code", None)
        where = self.spec.url
        have = "HF_TOKEN or `hf auth login`"
        if name == "GatedRepoError":
            why = ("a gated dataset: accept its conditions on its Hub page, then use a token of that account"
                   + ("" if self.token else f" ({have})"))
        elif name == "RevisionNotFoundError":
            why = f"no revision {self.spec.revision or 'main'!r} in this repo (see its branches and tags)"
        elif name in ("RemoteEntryNotFoundError", "EntryNotFoundError"):
            why = f"{step}: the file is not in the repo at this commit"
        elif name == "RepositoryNotFoundError":
            why = ("no such dataset repo, or it is private or gated: "
                   + ("check the name, or that the token's account can read it" if self.token else f"check the name, or log in ({have})"))
        elif status == 401:
            why = f"the Hub refused the token (HTTP 401): set a valid {have}"
        elif status == 403:
            why = f"the token may not read this repo (HTTP 403): use a token with read access ({have})"
        elif name in ("OfflineModeIsEnabled", "LocalEntryNotFoundError") and os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
            why = "HF_HUB_OFFLINE is set: unset it to download"
        elif is_transient(exc):
            detail = scrub(f"{name}: {exc}".splitlines()[0], self.token)
            why = f"{step} failed after {tries} tries ({detail}): check the connection and run again"
        else:
            detail = scrub(f"{name}: {exc}".splitlines()[0], self.token)
            why = f"{step} failed: {detail}"
        return f"{where}: {why}"


def with_card_license(options: Any, converter: Any, inputs: list[Any]) -> dict[str, Any] | None:
    """``options`` with ``license`` set from the dataset cards of the hf:// inputs among ``inputs``,
    when the user named no licence and the cards name one (several different ones are joined)."""
    if options and options.get("license"):
        return options
    if "license" not in getattr(converter, "options", {}):
        return options
    found: list[str] = []
    for inp in inputs:
        lic = (inp.origin or {}).get("license")
        if lic and lic not in found:
            found.append(lic)
    if not found:
        return options
    return {**(options or {}), "license": "; ".join(found)}


def cached_snapshot(folder: Any) -> Any:
    """For a repo folder of huggingface_hub's cache (``datasets--OWNER--NAME`` with ``blobs``,
    ``refs``, ``snapshots``): the snapshot ``refs/main`` names (else the newest), so a walk reads
    one commit's files, not every cached commit's; ``None`` for any other folder."""
    from pathlib import Path

    folder = Path(folder)
    snapshots = folder / "snapshots"
    if not (snapshots.is_dir() and (folder / "blobs").is_dir()):
        return None
    ref = folder / "refs" / "main"
    if ref.is_file() and (snapshots / ref.read_text("utf-8").strip()).is_dir():
        return snapshots / ref.read_text("utf-8").strip()
    found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None

