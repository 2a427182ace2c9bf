"""``kodolly push``: upload a Hub folder as one commit, guarded by the sources' licences.

* The token comes from the environment (``HF_TOKEN``) only; it is handed to ``huggingface_hub``
  and never printed, logged or written (error messages are scrubbed of it, and a folder whose
  files contain it is refused).
* The endpoint is ``--endpoint``, else ``HF_ENDPOINT``, else the Hub.
* Steps: create the dataset repo (``exist_ok``), create the branch when a revision is given, then
  ``upload_folder`` as a single commit. Old shards under ``data/`` that the new folder does not
  have are deleted in the same commit, so a re-push never leaves stale rows behind.
* Transient failures (HTTP 408/429/5xx, dropped or refused connections, timeouts) are retried
  with exponential backoff; anything else (401, 403, 404, 409, 422, ...) stops at once.
* Licence guard: rows carry their source's licence; a public push of a set with no-derivatives,
  no-redistribution or non-commercial sources is refused unless ``i_have_permission``; a private
  push of such a set goes ahead with a warning.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq

from ..errors import ConfigError, LicenseError, PushError, require
from ..scrub import scrub_secret
from ..licenses import LicenseReport, license_report
from .folder import MANIFEST_NAME, count_sources, load_manifest

OVERRIDE_FLAG = "--i-have-permission"
DELETE_PATTERNS = ["data/*"]


@dataclass
class PushResult:
    repo_id: str
    repo_url: str
    commit_url: str
    commit_oid: str
    private: bool
    revision: str | None
    files: list[str]
    attempts: int
    warnings: list[str] = field(default_factory=list)


def folder_files(folder: Path) -> list[str]:
    """The files of a Hub folder, relative and sorted (what ``upload_folder`` sends)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def folder_licenses(folder: Path) -> LicenseReport:
    """Sources and licences of the rows in the folder's shards (read from the rows themselves)."""
    manifest_path = folder / MANIFEST_NAME
    manifest = load_manifest(manifest_path) if manifest_path.exists() else {}
    counts: Counter = Counter()
    for shard in sorted((folder / "data").glob("*.parquet")):
        names = pq.read_schema(shard).names
        columns = [c for c in ("source", "license") if c in names]
        if columns:
            count_sources(pq.read_table(shard, columns=columns), counts, manifest)
        else:  # --dolly-only rows: the licence is the run's converter's
            count_sources(pq.read_table(shard, columns=[]), counts, manifest)
    return license_report(dict(counts))


def check_licenses(report: LicenseReport, *, private: bool, i_have_permission: bool) -> list[str]:
    """Raise :class:`LicenseError` for a public push of restricted sources; return warnings."""
    warnings: list[str] = []
    restricted = report.restricted
    if restricted and not private and not i_have_permission:
        raise LicenseError(
            "refusing a public push: these sources' licences restrict sharing this set:\n"
            + report.describe_restricted()
            + f"\nPush it private (--private), or pass {OVERRIDE_FLAG} if you have the rights holders' permission."
        )
    if restricted and private:
        warnings.append(
            "private push of restricted sources; keep the repository private and its access limited:\n"
            + report.describe_restricted()
        )
    elif restricted:
        warnings.append(f"public push of restricted sources allowed by {OVERRIDE_FLAG}:\n" + report.describe_restricted())
    if report.unknown:
        names = ", ".join(f"{s.source or '(none)'} ({s.rows} rows)" for s in report.unknown)
        warnings.append(f"sources with no known licence: {names}; check them before sharing")
    return warnings


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level error types of the HTTP clients huggingface_hub may use (already imported)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                          ("requests", ("ConnectionError", "Timeout"))):
        mod = sys.modules.get(module)
        for name in names:
            cls = getattr(mod, name, None) if mod is not None else None
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(found)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is worth retrying: 408/429/5xx, or the connection itself failed."""
    transport = _transport_errors()
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__name__ == "OfflineModeIsEnabled":  # a ConnectionError subclass, but not transient
            return False
        status = _status(e)
        if status is not None:
            return status in (408, 429) or status >= 500
        if isinstance(e, transport):
            return True
        e = e.__cause__ or e.__context__
    return False


def _scrub(text: str, token: str) -> str:
    return scrub_secret(text, token, "<HF_TOKEN>")  # URL-encoded and split forms too


def _check_folder(folder: Path, token: str) -> list[str]:
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder; build one with `kodolly publish OUTPUT -o FOLDER`")
    if not (folder / "README.md").is_file() or not list((folder / "data").glob("*.parquet")):
        raise ConfigError(f"{folder}: not a kodolly Hub folder (needs README.md and data/*.parquet); build it with `kodolly publish`")
    files = folder_files(folder)
    needle = token.encode()
    for rel in files:
        # the card, the manifest and anything a user dropped in; shards hold only the rows
        if rel.endswith(".parquet") or len(needle) < 8:
            continue
        if _contains(folder / rel, needle):
            raise ConfigError(f"{folder / rel}: contains the HF_TOKEN value; refusing to upload it")
    return files


def _contains(path: Path, needle: bytes, chunk: int = 1 << 20) -> bool:
    tail = b""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            if needle in tail + block:
                return True
            tail = block[-(len(needle) - 1):]
    return False


def push(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = True,
    revision: str | None = None,
    endpoint: str | None = None,
    message: str | None = None,
    i_have_permission: bool = False,
    retries: int = 4,
    retry_wait: float = 1.0,
    warn: Callable[[str], None] | None = None,
) -> PushResult:
    """Upload ``folder`` to the dataset repo ``repo_id`` as one commit (see the module docstring)."""
    hub = require("huggingface_hub", "hub")
    from huggingface_hub.utils import disable_progress_bars

    token = os.environ.get("HF_TOKEN", "")
    if not token:
        raise PushError("HF_TOKEN is not set; export a Hub token with write access (it is read from the environment only)")
    folder = Path(folder)
    files = _check_folder(folder, token)
    report = folder_licenses(folder)
    warnings = check_licenses(report, private=private, i_have_permission=i_have_permission)
    for w in warnings:
        if warn is not None:
            warn(w)
    disable_progress_bars()
    api = hub.HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token,
                    library_name="kodolly", library_version=_version())
    attempts = 0

    def attempt(step: str, fn: Callable[[], object]) -> object:
        nonlocal attempts
        for i in range(retries + 1):
            attempts += 1
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as PushError
                status = _status(exc)
                detail = _scrub(f"{type(exc).__name__}: {exc}".splitlines()[0], token)
                if i < retries and is_transient(exc):
                    wait = retry_wait * (2**i)
                    if warn is not None:
                        warn(f"{step}: transient error ({detail}); retrying in {wait:.1f}s")
                    time.sleep(wait)
                    continue
                what = f"HTTP {status}" if status is not None else "error"
                hint = {401: " (is HF_TOKEN valid?)", 403: " (does HF_TOKEN have write access to this namespace?)",
                        404: " (does the repository / revision exist?)"}.get(status or 0, "")
                raise PushError(f"{step} failed for {repo_id}: {what}{hint}: {detail}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    repo_url = attempt("create repo", lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True))
    # an existing repo keeps its visibility: guard on what it really is, not on what was asked
    actual = attempt("repo info", lambda: api.repo_info(repo_id, repo_type="dataset"))
    private = _guard_visibility(repo_id, report, private, bool(getattr(actual, "private", private)),
                                i_have_permission, warnings, warn)
    if not private:
        note = pii_warning(folder)
        if note:
            warnings.append(note)
            if warn is not None:
                warn(note)
    if revision and revision != "main":
        attempt("create branch", lambda: api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True))
    info = attempt(
        "upload",
        lambda: api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="dataset",
            revision=revision,
            commit_message=message or f"Upload dataset with kodolly {_version()}",
            delete_patterns=DELETE_PATTERNS,
        ),
    )
    return PushResult(
        repo_id=repo_id,
        repo_url=str(repo_url),
        commit_url=getattr(info, "commit_url", ""),
        commit_oid=getattr(info, "oid", ""),
        private=private,
        revision=revision,
        files=files,
        attempts=attempts,
        warnings=warnings,
    )


def pii_steps(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``pii`` filter entries of a manifest (of the run itself, or of the run a DPO set was built from)."""
    found = [f for f in manifest.get("filters") or [] if isinstance(f, dict) and f.get("name") == "pii"]
    source = manifest.get("source_manifest")
    if not found and isinstance(source, dict):
        found = pii_steps(source)
    return found


def pii_warning(folder: Path) -> str | None:
    """A warning for a public push of data on which no PII step ran (None when one did)."""
    manifest_path = folder / MANIFEST_NAME
    manifest = load_manifest(manifest_path) if manifest_path.exists() else {}
    steps = pii_steps(manifest)
    if steps:
        return None
    return ("public push: the manifest shows no personal-data step on these rows; run kodolly convert --pii mask "
            "(or --pii report to see what is there) before publishing")


def _guard_visibility(
    repo_id: str,
    report: LicenseReport,
    asked_private: bool,
    actual_private: bool,
    i_have_permission: bool,
    warnings: list[str],
    warn: Callable[[str], None] | None,
) -> bool:
    """Re-check the licences when an existing repo's visibility differs from the one asked for."""
    if actual_private == asked_private:
        return actual_private
    new: list[str] = []
    if not actual_private:  # raises LicenseError for restricted sources without permission
        new += [w for w in check_licenses(report, private=False, i_have_permission=i_have_permission) if w not in warnings]
    new.append(f"{repo_id} already exists and is {'private' if actual_private else 'PUBLIC'}; its visibility is not changed")
    for w in new:
        warnings.append(w)
        if warn is not None:
            warn(w)
    return actual_private


def _version() -> str:
    from .. import __version__

    return __version__
