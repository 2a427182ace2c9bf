"""The persistent translation cache: SQLite (WAL), one connection guarded by a lock, a commit per result.

A translation is stored under a key that hashes everything that decides the answer: the model, the
system prompt, the request parameters and the text (:func:`cache_key`). Each result is committed as it
arrives, so a run killed at any moment (even with SIGKILL) and started again asks only for what is
missing. Rejected translations are stored too (with their reason), so a restart does not pay for them
again — unless it asks to (``--retry-rejected``: :attr:`TranslationCache.ignore_rejected_before`). The key is never the API key: nothing secret goes into this file.

Runs sharing one cache pay once for a text: before a run sends a text it *claims* it (``claims``: the
key, the run, its host and pid, a heartbeat), in the same transaction that checks the text is not
translated yet. A second run that finds a live claim waits for the first run's answer and reuses it; when
the claim goes away without an answer (that run failed on it) the second run claims the text itself. A
claim whose run is dead (same host, pid gone or a zombie) or whose heartbeat is older than its ``ttl``
(another host, or a hung run) is stale and is taken over, so nothing deadlocks.

Batch mode keeps its batches here as well (``batches`` and ``batch_items``), written as soon as a batch
is created, so a restarted run re-attaches to it instead of creating (and paying for) a new one. Before
the batch is created, a *pending* marker (``pending_batches``: the uploaded request file's id, items kept
under that id) closes the window between "created at the API" and "id stored": a run killed inside it
finds, on restart, the batch made from that file in the API's batch list (see :mod:`kodolly.dpo.batch`).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    translation TEXT,
    reason TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    signature TEXT NOT NULL,
    status TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_batches (
    input_file_id TEXT PRIMARY KEY,
    signature TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_items (
    batch_id TEXT NOT NULL,
    key TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (batch_id, key)
);
"""


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs on this host (a zombie, killed but not reaped, is not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


def _stale(host: str, pid: int, heartbeat: float, ttl: float, this_host: str) -> bool:
    if host == this_host and not pid_alive(pid):
        return True
    return time.time() - heartbeat > ttl


def default_cache_path() -> Path:
    base = os.environ.get("KODOLLY_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "kodolly")
    return Path(base) / "dpo.sqlite"


def request_signature(model: str, system_prompt: str, params: dict[str, Any]) -> str:
    """Hash of what, besides the text, decides a translation."""
    blob = json.dumps({"model": model, "system": system_prompt, "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_key(signature: str, text: str) -> str:
    return hashlib.sha256(signature.encode() + b"\x00" + text.encode()).hexdigest()


@dataclass(frozen=True)
class Cached:
    translation: str | None
    reason: str | None
    prompt_tokens: int
    completion_tokens: int


class TranslationCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # --retry-rejected: rejected translations stored before this time read as missing (asked again);
        # those stored by the current run still count
        self.ignore_rejected_before: float | None = None
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def get(self, key: str) -> Cached | None:
        with self._lock:
            return self._get(key)

    def _get(self, key: str) -> Cached | None:
        row = self._conn.execute(
            "SELECT translation, reason, prompt_tokens, completion_tokens, created FROM translations WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        if row[1] is not None and self.ignore_rejected_before is not None and row[4] < self.ignore_rejected_before:
            return None
        return Cached(*row[:4])

    def put(self, key: str, model: str, translation: str | None, reason: str | None, prompt_tokens: int, completion_tokens: int) -> None:
        """Store a result and drop any claim on it, in one transaction."""
        with self._lock:
            with self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, model, translation, reason, prompt_tokens, completion_tokens, time.time()),
                )
                self._conn.execute("DELETE FROM claims WHERE key = ?", (key,))

    # claims ------------------------------------------------------------------------------------

    def claim(self, key: str, owner: str, ttl: float) -> Cached | str | None:
        """Claim ``key`` for ``owner`` before sending it. Returns the cached result when there is one, the
        owner of a live claim held by another run (wait and ask again), or None: the claim is ours."""
        host = socket.gethostname()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cached = self._get(key)
                if cached is not None:
                    self._conn.commit()
                    return cached
                row = self._conn.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE key = ?", (key,)).fetchone()
                if row is not None and row[0] != owner and not _stale(row[1], row[2], row[3], ttl, host):
                    self._conn.commit()
                    return row[0]
                self._conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)", (key, owner, host, os.getpid(), time.time()))
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
        return None

    def release(self, key: str, owner: str) -> None:
        with self._lock:
            with self._conn:
                self._conn.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

    def release_all(self, owner: str) -> None:
        with self._lock:
            with self._conn:
                self._conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))

    def heartbeat(self, owner: str) -> None:
        with self._lock:
            with self._conn:
                self._conn.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), owner))

    def claims(self) -> list[tuple[str, str, str, int, float]]:
        with self._lock:
            return self._conn.execute("SELECT key, owner, host, pid, heartbeat FROM claims ORDER BY key").fetchall()

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    # batches -----------------------------------------------------------------------------------

    def add_batch(self, batch_id: str, signature: str, items: Iterable[tuple[str, str]]) -> None:
        """Record a created batch and its (key, text) items in one transaction."""
        with self._lock:
            with self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, 0, ?)", (batch_id, signature, "created", time.time())
                )
                self._conn.executemany(
                    "INSERT OR REPLACE INTO batch_items VALUES (?, ?, ?)", ((batch_id, k, t) for k, t in items)
                )

    def add_pending(self, input_file_id: str, signature: str, items: Iterable[tuple[str, str]]) -> None:
        """Record, before ``batches.create``, that a batch is about to be made from ``input_file_id``."""
        with self._lock:
            with self._conn:
                self._conn.execute("INSERT OR REPLACE INTO pending_batches VALUES (?, ?, ?)", (input_file_id, signature, time.time()))
                self._conn.executemany(
                    "INSERT OR REPLACE INTO batch_items VALUES (?, ?, ?)", ((input_file_id, k, t) for k, t in items)
                )

    def pending_batches(self, signature: str) -> list[tuple[str, float]]:
        """(input file id, time marked) of batches that may have been created without their id stored."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT input_file_id, created FROM pending_batches WHERE signature = ? ORDER BY created", (signature,)
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def attach_batch(self, input_file_id: str, batch_id: str) -> None:
        """The batch made from a pending file is known: store it (with the pending items) and drop the marker."""
        with self._lock:
            with self._conn:
                row = self._conn.execute("SELECT signature FROM pending_batches WHERE input_file_id = ?", (input_file_id,)).fetchone()
                if row is None:
                    return
                self._conn.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, 0, ?)", (batch_id, row[0], "created", time.time()))
                self._conn.execute("UPDATE batch_items SET batch_id = ? WHERE batch_id = ?", (batch_id, input_file_id))
                self._conn.execute("DELETE FROM pending_batches WHERE input_file_id = ?", (input_file_id,))

    def drop_pending(self, input_file_id: str) -> None:
        """No batch was made from the file: forget the marker (its texts are still missing from the cache)."""
        with self._lock:
            with self._conn:
                self._conn.execute("DELETE FROM pending_batches WHERE input_file_id = ?", (input_file_id,))
                self._conn.execute("DELETE FROM batch_items WHERE batch_id = ?", (input_file_id,))

    def open_batches(self, signature: str) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM batches WHERE signature = ? AND collected = 0 ORDER BY created", (signature,)
            ).fetchall()
        return [r[0] for r in rows]

    def batch_items(self, batch_id: str) -> dict[str, str]:
        with self._lock:
            rows = self._conn.execute("SELECT key, text FROM batch_items WHERE batch_id = ?", (batch_id,)).fetchall()
        return dict(rows)

    def finish_batch(self, batch_id: str, status: str) -> None:
        with self._lock:
            with self._conn:
                self._conn.execute("UPDATE batches SET status = ?, collected = 1 WHERE id = ?", (status, batch_id))
