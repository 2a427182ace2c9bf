"""A small real Hugging Face Hub on 127.0.0.1 for push tests (a threaded http.server).

It implements the endpoints huggingface_hub 2.x calls to create a dataset repo, a branch, list a
tree, validate a card's YAML and make a commit: the ``preupload`` answer sends ``.parquet`` files
(and anything over 1 MB) through the Git LFS batch API (upload with PUT, then verify), everything
else inline as base64 in the NDJSON commit, as the real Hub does. Each branch's files are kept
as bytes so tests can compare them with the folder that was pushed. Every API call must carry the
expected bearer token. ``fail(...)`` makes the next matching requests answer with an error status.

It also serves downloads the way huggingface_hub 2.x asks for them (``hf_hub_download``,
``HfApi.dataset_info`` / ``list_repo_tree``): repo info with ``sha``, ``siblings`` and ``cardData``
(at a branch, or at a commit: ``/api/datasets/R/revision/REV``), the tree listing with git blob ids
and LFS sha256, and ``HEAD``/``GET /datasets/R/resolve/REV/PATH`` answering with ``X-Repo-Commit``,
``ETag`` and ``Content-Length``; LFS files (parquet, or 1 MB and more) are redirected (302, with
``X-Linked-Etag`` / ``X-Linked-Size``) to a "CDN" on another host name (``localhost``, the same
server), as the Hub does. No ``X-Xet-Hash`` is sent, so the client downloads over plain HTTP.
Reading needs no token for a public repo; a private repo without one is a 401 ``RepoNotFound``, a
missing one a 404 ``RepoNotFound``, a gated one a 401/403 ``GatedRepo``, a wrong token a 401
``Invalid credentials``, as on the Hub. ``add_dataset(...)`` seeds a repo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from urllib.parse import unquote
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

LFS_MIN_SIZE = 1 << 20


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: list[dict[str, Any]] = field(default_factory=list)
    gated: bool = False
    snapshots: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> files

    def resolve(self, rev: str) -> tuple[str, dict[str, bytes]] | None:
        """A branch name or a commit sha -> (commit sha, files at that commit)."""
        if rev in self.branches:
            files = self.branches[rev]
            digest = hashlib.sha1()
            for path, data in sorted(files.items()):
                digest.update(f"{path}\0{git_blob_oid(data)}\0".encode())
            sha = digest.hexdigest()
            self.snapshots.setdefault(sha, dict(files))
            return sha, files
        if rev in self.snapshots:
            return rev, self.snapshots[rev]
        return None


def is_lfs(path: str, data: bytes) -> bool:
    return path.endswith((".parquet", ".arrow")) or len(data) >= LFS_MIN_SIZE


def card_data(files: dict[str, bytes]) -> dict[str, Any] | None:
    readme = files.get("README.md")
    m = re.match(r"^---\n(.*?)\n---\n", readme.decode("utf-8"), re.S) if readme else None
    meta = yaml.safe_load(m.group(1)) if m else None
    return meta if isinstance(meta, dict) else None


@dataclass
class HubState:
    token: str
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    arrived_as: dict[str, str] = field(default_factory=dict)  # path -> "lfs" | "regular" (last commit)
    seen_auth: list[str] = field(default_factory=list)
    failures: list[list[Any]] = field(default_factory=list)  # [method, regex, status | "drop", times_left]
    gate_accepted: bool = False  # whether the token's account accepted the gated repos' conditions
    cdn_auth: list[str] = field(default_factory=list)  # Authorization headers the "CDN" received
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, method: str, pattern: str, status: int | str, times: int = 1) -> None:
        self.failures.append([method, re.compile(pattern), status, times])

    def add_dataset(self, repo_id: str, files: dict[str, bytes], *, private: bool = False, gated: bool = False,
                    branch: str = "main") -> str:
        """Seed a dataset repo (or another branch of it) with files; returns the branch's commit sha."""
        repo = self.repos.setdefault(repo_id, Repo(private=private, gated=gated))
        repo.branches[branch] = dict(files)
        for path, data in files.items():
            if is_lfs(path, data):
                self.lfs[hashlib.sha256(data).hexdigest()] = data
        resolved = repo.resolve(branch)
        assert resolved is not None
        return resolved[0]

    def count(self, method: str, pattern: str) -> int:
        rx = re.compile(pattern)
        return sum(1 for m, p in self.requests if m == method and rx.search(p))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "HubServer"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # -- plumbing ---------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self, method: str) -> None:
        state = self.server.state
        path, _, query = self.path.partition("?")
        body = self._body()
        with state.lock:
            state.requests.append((method, path))
            auth = self.headers.get("Authorization") or ""
            state.seen_auth.append(auth)
            for rule in state.failures:
                if rule[0] == method and rule[1].search(path) and rule[3] > 0:
                    rule[3] -= 1
                    if rule[2] == "drop":  # the connection dies before an answer
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self._send(rule[2], {"error": f"injected {rule[2]}"})
                    return
        # Reads (GET/HEAD) work without a token where the repo allows it (checked by the route); a
        # token that is sent must be the right one; writes need it.
        needs_auth = (path.startswith("/api/") and method not in ("GET", "HEAD")) or "/info/lfs/" in path
        if (auth or needs_auth) and auth != f"Bearer {state.token}":
            self._send(401, {"error": "Invalid credentials in Authorization header"})
            return
        for verb, rx, fn in ROUTES:
            m = rx.fullmatch(path)
            if verb == method and m:
                with state.lock:
                    fn(self, state, body, *m.groups())
                return
        self._send(404, {"error": f"no route {method} {path}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        """A file's bytes (none for HEAD, with the same Content-Length)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    @property
    def base(self) -> str:
        return self.server.base_url


# -- endpoints ------------------------------------------------------------------------------
def _create_repo(h: _Handler, state: HubState, body: bytes) -> None:
    req = json.loads(body)
    if req.get("type") != "dataset":
        h._send(400, {"error": f"expected a dataset repo, got {req.get('type')!r}"})
        return
    repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
    url = f"{h.base}/datasets/{repo_id}"
    if repo_id in state.repos:
        h._send(409, {"error": "You already created this dataset repo", "url": url})
        return
    private = req.get("private")
    if private is None:
        private = req.get("visibility") == "private"
    state.repos[repo_id] = Repo(private=bool(private))
    h._send(200, {"url": url, "name": repo_id})


def _readable(h: _Handler, state: HubState, repo_id: str) -> Repo | None:
    """The repo, if the request may read it; else the Hub's answer has been sent and None is returned."""
    repo = state.repos.get(repo_id)
    authed = bool(h.headers.get("Authorization"))  # a wrong token never gets here
    if repo is None or (repo.private and not authed):
        h._send(401 if not authed else 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        return None
    if repo.gated and not state.gate_accepted:
        h._send(403 if authed else 401, {"error": "Access to this dataset is restricted"}, {"X-Error-Code": "GatedRepo"})
        return None
    return repo


def _readable_at(h: _Handler, state: HubState, repo_id: str, rev: str) -> tuple[Repo, str, dict[str, bytes]] | None:
    """The repo, its commit and files at ``rev`` (URL-quoted), if the request may read it and the revision
    exists; else the Hub's answer has been sent and None is returned."""
    repo = _readable(h, state, repo_id)
    if repo is None:
        return None
    resolved = repo.resolve(unquote(rev))
    if resolved is None:
        h._send(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
        return None
    return repo, *resolved


def _repo_info(h: _Handler, state: HubState, body: bytes, repo_id: str, rev: str | None = None) -> None:
    found = _readable_at(h, state, repo_id, rev or "main")
    if found is None:
        return
    repo, sha, files = found
    h._send(200, {"id": repo_id, "private": repo.private, "gated": repo.gated, "sha": sha,
                  "siblings": [{"rfilename": p} for p in sorted(files)], "cardData": card_data(files)})


def _create_branch(h: _Handler, state: HubState, body: bytes, repo_id: str, branch: str) -> None:
    repo = state.repos.get(repo_id)
    if repo is None:
        h._send(404, {"error": "Repository not found"})
        return
    if branch in repo.branches:
        h._send(409, {"error": "Reference already exists"})
        return
    start = json.loads(body or b"{}").get("startingPoint") or "main"
    repo.branches[branch] = dict(repo.branches[start])
    h._send(200, {})


def _tree(h: _Handler, state: HubState, body: bytes, repo_id: str, rev: str, sub: str | None) -> None:
    found = _readable_at(h, state, repo_id, rev)
    if found is None:
        return
    files = found[2]
    recursive = "recursive=true" in h.path.lower() or "recursive=1" in h.path.lower()
    prefix = (sub.strip("/") + "/") if sub else ""
    out: list[dict[str, Any]] = []
    dirs = sorted({p.rsplit("/", 1)[0] for p in files if "/" in p})
    for d in dirs:
        if d.startswith(prefix) and (recursive or "/" not in d[len(prefix):]):
            out.append({"type": "directory", "path": d, "oid": "0" * 40, "size": 0})
    for p, b in sorted(files.items()):
        if not p.startswith(prefix) or (not recursive and "/" in p[len(prefix):]):
            continue
        entry: dict[str, Any] = {"type": "file", "path": p, "size": len(b), "oid": git_blob_oid(b)}
        if is_lfs(p, b):
            entry["lfs"] = {"oid": hashlib.sha256(b).hexdigest(), "size": len(b), "pointerSize": 134}
        out.append(entry)
    h._send(200, out)


def _resolve(h: _Handler, state: HubState, body: bytes, repo_id: str, rev: str, path: str) -> None:
    found = _readable_at(h, state, repo_id, rev)
    if found is None:
        return
    _, sha, files = found
    data = files.get(unquote(path))
    if data is None:
        h._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha})
        return
    headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_oid(data)}"', "Accept-Ranges": "bytes"}
    if is_lfs(path, data):
        oid = hashlib.sha256(data).hexdigest()
        cdn = h.base.replace("127.0.0.1", "localhost")  # another host name: the client drops the token there
        headers.update({"Location": f"{cdn}/cdn/{oid}", "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(data))})
        h._send_bytes(302, b"", headers)
        return
    h._send_bytes(200, data, headers)


def _cdn(h: _Handler, state: HubState, body: bytes, oid: str) -> None:
    data = state.lfs.get(oid)
    if data is None:
        h._send(404, {"error": "no such object"})
        return
    state.cdn_auth.append(h.headers.get("Authorization") or "")
    h._send_bytes(200, data, {"ETag": f'"{oid}"'})


def _validate_yaml(h: _Handler, state: HubState, body: bytes) -> None:
    content = json.loads(body)["content"]
    m = re.match(r"^---\n(.*?)\n---\n", content, re.S)
    try:
        meta = yaml.safe_load(m.group(1)) if m else None
    except yaml.YAMLError as exc:
        h._send(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
        return
    if not isinstance(meta, dict):
        h._send(200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata in repo card"}]})
        return
    h._send(200, {"errors": [], "warnings": []})


def _preupload(h: _Handler, state: HubState, body: bytes, repo_id: str, rev: str) -> None:
    repo = state.repos.get(repo_id)
    if repo is None or rev not in repo.branches:
        h._send(404, {"error": "Revision not found"})
        return
    files = []
    for f in json.loads(body)["files"]:
        lfs = f["path"].endswith(".parquet") or f["size"] >= LFS_MIN_SIZE
        existing = repo.branches[rev].get(f["path"])
        files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                      "oid": git_blob_oid(existing) if existing is not None and not lfs else None})
    h._send(200, {"files": files, "commitOid": "0" * 40})


def _lfs_batch(h: _Handler, state: HubState, body: bytes, repo_id: str) -> None:
    req = json.loads(body)
    if req.get("operation") != "upload":
        h._send(400, {"message": "only upload"})
        return
    objects = []
    for obj in req["objects"]:
        if obj["oid"] in state.lfs:
            objects.append({"oid": obj["oid"], "size": obj["size"]})
        else:
            objects.append({"oid": obj["oid"], "size": obj["size"], "actions": {
                "upload": {"href": f"{h.base}/lfs-storage/{obj['oid']}"},
                "verify": {"href": f"{h.base}/datasets/{repo_id}.git/info/lfs/objects/verify"},
            }})
    h._send(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})


def _lfs_put(h: _Handler, state: HubState, body: bytes, oid: str) -> None:
    if hashlib.sha256(body).hexdigest() != oid:
        h._send(400, {"error": "sha256 mismatch"})
        return
    state.lfs[oid] = body
    h._send(200, None)


def _lfs_verify(h: _Handler, state: HubState, body: bytes, repo_id: str) -> None:
    req = json.loads(body)
    ok = req["oid"] in state.lfs and len(state.lfs[req["oid"]]) == req["size"]
    h._send(200 if ok else 404, {} if ok else {"error": "object not found"})


def _commit(h: _Handler, state: HubState, body: bytes, repo_id: str, rev: str) -> None:
    repo = state.repos.get(repo_id)
    if repo is None or rev not in repo.branches:
        h._send(404, {"error": "Revision not found"})
        return
    if h.headers.get("Content-Type") != "application/x-ndjson":
        h._send(400, {"error": "expected ndjson"})
        return
    files = dict(repo.branches[rev])
    header = None
    arrived: dict[str, str] = {}
    for line in body.splitlines():
        item = json.loads(line)
        key, value = item["key"], item["value"]
        if key == "header":
            header = value
        elif key == "file":
            files[value["path"]] = base64.b64decode(value["content"])
            arrived[value["path"]] = "regular"
        elif key == "lfsFile":
            if value["oid"] not in state.lfs:
                h._send(422, {"error": f"LFS object {value['oid']} was never uploaded"})
                return
            files[value["path"]] = state.lfs[value["oid"]]
            arrived[value["path"]] = "lfs"
        elif key == "deletedFile":
            files.pop(value["path"], None)
        elif key == "deletedFolder":
            for p in [p for p in files if p.startswith(value["path"].rstrip("/") + "/")]:
                files.pop(p)
        else:
            h._send(400, {"error": f"unknown key {key}"})
            return
    if header is None or not header.get("summary"):
        h._send(400, {"error": "missing commit header"})
        return
    repo.branches[rev] = files
    oid = hashlib.sha1(f"{repo_id}{rev}{len(repo.commits)}".encode()).hexdigest()
    repo.commits.append({"revision": rev, "summary": header["summary"], "oid": oid, "paths": sorted(arrived)})
    state.arrived_as.update(arrived)
    h._send(200, {"commitUrl": f"{h.base}/datasets/{repo_id}/commit/{oid}", "commitOid": oid,
                  "pullRequestUrl": None, "success": True})


_REPO = r"([^/]+/[^/]+)"
ROUTES = [
    ("POST", re.compile(r"/api/repos/create"), _create_repo),
    ("GET", re.compile(rf"/api/datasets/{_REPO}"), _repo_info),
    ("GET", re.compile(rf"/api/datasets/{_REPO}/revision/([^/]+)"), _repo_info),
    ("POST", re.compile(rf"/api/datasets/{_REPO}/branch/([^/]+)"), _create_branch),
    ("GET", re.compile(rf"/api/datasets/{_REPO}/tree/([^/]+)(?:/(.*))?"), _tree),
    ("POST", re.compile(r"/api/validate-yaml"), _validate_yaml),
    ("POST", re.compile(rf"/api/datasets/{_REPO}/preupload/([^/]+)"), _preupload),
    ("POST", re.compile(rf"/datasets/{_REPO}\.git/info/lfs/objects/batch"), _lfs_batch),
    ("PUT", re.compile(r"/lfs-storage/([0-9a-f]{64})"), _lfs_put),
    ("POST", re.compile(rf"/datasets/{_REPO}\.git/info/lfs/objects/verify"), _lfs_verify),
    ("POST", re.compile(rf"/api/datasets/{_REPO}/commit/([^/]+)"), _commit),
    ("HEAD", re.compile(rf"/datasets/{_REPO}/resolve/([^/]+)/(.+)"), _resolve),
    ("GET", re.compile(rf"/datasets/{_REPO}/resolve/([^/]+)/(.+)"), _resolve),
    ("HEAD", re.compile(r"/cdn/([0-9a-f]{64})"), _cdn),
    ("GET", re.compile(r"/cdn/([0-9a-f]{64})"), _cdn),
]


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = HubState(token=token)
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
