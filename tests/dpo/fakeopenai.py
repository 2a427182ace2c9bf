"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the DPO tests (stdlib ThreadingHTTPServer).

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/files`` (multipart), ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/batches?limit=&after=`` (the list, newest first,
paginated like the real API's cursor pages; ``server.batch_lists`` counts its requests). The "translation" is a deterministic romanisation of the
Hangul (``romanize``), so a test knows every expected ``rejected`` answer.

Faults are injected per text: ``server.fault(substring, "429", "500", ...)`` makes the next requests for a
text containing ``substring`` fail in that order (one fault a request), then answer normally. Kinds:
``429`` (with Retry-After), ``500``, ``slow`` (sleep past the client timeout), ``drop`` (close the socket
without an answer), ``malformed`` (200 with broken JSON), ``401`` (echoes the bearer key in its message,
like OpenAI does), ``401-encoded`` / ``500-encoded`` (the key URL-encoded, ``-`` as ``%2D``), ``500-split`` (the key cut
in two JSON fields and across a line break), ``leak-key`` (a translation with the key in it), ``refusal``, ``echo``, ``cyrillic``, ``empty``.
``server.fault_all(kind, ...)``: the next requests for *any* text fail in that order (an outage).
``server.full_answers = True``: every answer reports exactly its ``max_tokens`` as completion tokens (and
``server.count_prompt(system, text)``, when set, as prompt tokens): the worst case a budget must hold.
``server.gate``: clear it to hold every chat answer back until it is set again.
``server.billed`` sums the usage of every answer the server completed, including those whose client had
stopped waiting (``slow``): what the API would bill.
Batch faults: ``server.batch_plan = ["partial", "ok"]`` (one entry per created batch): ``partial`` puts the
items whose text contains one of ``server.batch_fail`` in the error file, ``expired`` answers only the
first half and ends ``expired``, ``failed`` ends ``failed`` with no output.

``server.chat_counts`` / ``server.batch_counts`` count requests per text; ``server.params`` keeps the
parameters (all but ``messages``) of every chat request. Like the real API, a reasoning model
(``o1``/``o3``/``o4-mini``/``gpt-5``...) answers 400 ``unsupported_parameter`` to ``max_tokens`` and 400
``unsupported_value`` to a temperature other than 1 — live and inside a batch.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_INITIALS = ["g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h"]
_MEDIALS = ["a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi", "yu", "eu", "ui", "i"]
_FINALS = ["", "k", "k", "ks", "n", "nj", "nh", "t", "l", "lk", "lm", "lb", "ls", "lt", "lp", "lh", "m", "p", "ps", "t", "t", "ng", "t", "t", "k", "t", "p", "t"]


def romanize(text: str) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if 0xAC00 <= o <= 0xD7A3:
            idx = o - 0xAC00
            out.append(_INITIALS[idx // 588] + _MEDIALS[(idx % 588) // 28] + _FINALS[idx % 28])
        else:
            out.append(ch)
    return "".join(out)


_REASONING = re.compile(r"^(o\d+|gpt-5)([-.:_].*)?$")


def unsupported(body: dict) -> dict | None:
    """The 400 error the real API gives a reasoning model for ``max_tokens`` or a temperature, else None."""
    if not _REASONING.match(str(body.get("model", ""))):
        return None
    if "max_tokens" in body:
        return {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                     "Use 'max_completion_tokens' instead.", "type": "invalid_request_error",
                          "param": "max_tokens", "code": "unsupported_parameter"}}
    if body.get("temperature", 1) != 1:
        return {"error": {"message": f"Unsupported value: 'temperature' does not support {body['temperature']} with this "
                                     "model. Only the default (1) value is supported.", "type": "invalid_request_error",
                          "param": "temperature", "code": "unsupported_value"}}
    return None


def fake_usage(text: str, answer: str) -> dict[str, int]:
    p, c = len(text) // 2 + 10, len(answer) // 4 + 1
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def completion(model: str, text: str, answer: str) -> dict:
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:12],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": fake_usage(text, answer),
    }


class FakeOpenAI:
    def __init__(self, latency: float = 0.0, slow_seconds: float = 1.0, retry_after: str = "0.05") -> None:
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.chat_counts: Counter = Counter()
        self.params: list[dict] = []
        self.batch_counts: Counter = Counter()
        self.served = 0  # chat answers that got a 200
        self.active = self.max_active = 0  # chat requests in the server at once
        self.faults: dict[str, deque] = {}
        self.batch_plan: list[str] = []
        self.batch_fail: list[str] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_polls: Counter = Counter()
        self.batch_lists = 0
        self.create_faults: list[str] = []  # "drop": the next POST /v1/batches creates the batch, then drops the answer
        self.reject_all = False  # every endpoint answers 401
        self.all_faults: deque = deque()
        self.gate = threading.Event()  # chat answers wait while it is clear (a test holds them back)
        self.gate.set()
        self.full_answers = False
        self.count_prompt = None
        self.billed: Counter = Counter()  # prompt_tokens / completion_tokens / answers of every completed answer
        self.paths: Counter = Counter()
        self.lock = threading.RLock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fault(self, substring: str, *kinds: str) -> None:
        self.faults.setdefault(substring, deque()).extend(kinds)

    def fault_all(self, *kinds: str) -> None:
        self.all_faults.extend(kinds)

    def next_fault(self, text: str) -> str | None:
        with self.lock:
            if self.all_faults:
                return self.all_faults.popleft()
            for sub, queue in self.faults.items():
                if sub in text and queue:
                    return queue.popleft()
        return None

    def answer(self, text: str) -> str:
        return romanize(text)

    # batches ---------------------------------------------------------------------------------

    def run_batch(self, batch: dict) -> None:
        """Finish a batch: write its output / error files per the plan."""
        plan = self.batch_plan.pop(0) if self.batch_plan else "ok"
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]].decode().splitlines() if line.strip()]
        out, err = [], []
        if plan == "failed":
            batch.update(status="failed", errors={"object": "list", "data": [{"code": "server_error", "message": "batch failed"}]},
                         failed_at=int(time.time()))
            batch["request_counts"] = {"total": len(lines), "completed": 0, "failed": len(lines)}
            return
        answered = lines[: len(lines) // 2] if plan == "expired" else lines
        for item in answered:
            body = item["body"]
            text = body["messages"][-1]["content"]
            with self.lock:
                self.batch_counts[text] += 1
            refused = unsupported(body)
            if refused is not None:
                err.append({"id": "batch_req_" + uuid.uuid4().hex[:8], "custom_id": item["custom_id"],
                            "response": {"status_code": 400, "request_id": "r", "body": refused}, "error": None})
                continue
            if plan == "partial" and any(s in text for s in self.batch_fail):
                err.append({"id": "batch_req_" + uuid.uuid4().hex[:8], "custom_id": item["custom_id"],
                            "response": {"status_code": 500, "request_id": "r", "body": {"error": {"message": "server error"}}},
                            "error": None})
                continue
            fault = self.next_fault(text)
            answer = {"refusal": "I'm sorry, but I can't help with that.", "echo": text}.get(fault or "", self.answer(text))
            out.append({"id": "batch_req_" + uuid.uuid4().hex[:8], "custom_id": item["custom_id"],
                        "response": {"status_code": 200, "request_id": "r", "body": completion(body["model"], text, answer)},
                        "error": None})
        for name, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                fid = "file-" + uuid.uuid4().hex[:12]
                self.files[fid] = ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode()
                batch[name] = fid
        batch["status"] = "expired" if plan == "expired" else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(lines) - len(out)}


def _handler(server: FakeOpenAI):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _send(self, status: int, body: bytes, headers: dict | None = None, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _drop(self) -> None:
            """Close the connection without an answer (the client sees it dropped)."""
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _json(self, status: int, data: dict, headers: dict | None = None) -> None:
            self._send(status, json.dumps(data, ensure_ascii=False).encode(), headers)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _unauthorized(self) -> bool:
            if not server.reject_all:
                return False
            self._body()
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            self._json(401, {"error": {"message": f"Incorrect API key provided: {key}.", "code": "invalid_api_key"}})
            return True

        def do_POST(self) -> None:
            if self._unauthorized():
                return
            server.paths[("POST", self.path.split("/")[2] if self.path.count("/") >= 2 else self.path)] += 1
            if self.path == "/v1/chat/completions":
                return self._chat()
            if self.path == "/v1/files":
                return self._upload()
            if self.path == "/v1/batches":
                return self._create_batch()
            m = re.fullmatch(r"/v1/batches/([^/]+)/cancel", self.path)
            if m and m.group(1) in server.batches:
                server.batches[m.group(1)]["status"] = "cancelled"
                return self._json(200, server.batches[m.group(1)])
            self._json(404, {"error": {"message": "not found"}})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/v1/batches":
                return self._list_batches(parse_qs(parts.query))
            m = re.fullmatch(r"/v1/files/([^/]+)/content", self.path)
            if m and m.group(1) in server.files:
                return self._send(200, server.files[m.group(1)], ctype="application/octet-stream")
            m = re.fullmatch(r"/v1/batches/([^/]+)", self.path)
            if m and m.group(1) in server.batches:
                batch = server.batches[m.group(1)]
                with server.lock:
                    server.batch_polls[batch["id"]] += 1
                    polls = server.batch_polls[batch["id"]]
                    if batch["status"] == "validating":
                        batch["status"] = "in_progress"
                    elif batch["status"] == "in_progress" and polls >= 2:
                        server.run_batch(batch)
                return self._json(200, batch)
            self._json(404, {"error": {"message": "not found"}})

        def _chat(self) -> None:
            req = json.loads(self._body())
            text = req["messages"][-1]["content"]
            with server.lock:
                server.chat_counts[text] += 1
                server.params.append({k: v for k, v in req.items() if k != "messages"})
            refused = unsupported(req)
            if refused is not None:
                return self._json(400, refused)
            with server.lock:
                server.active += 1
                server.max_active = max(server.max_active, server.active)
            try:
                server.gate.wait(60)
                if server.latency:
                    time.sleep(server.latency)
            finally:
                with server.lock:
                    server.active -= 1
            fault = server.next_fault(text)
            if fault == "401":
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                return self._json(401, {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error",
                                                  "code": "invalid_api_key"}})
            if fault in ("401-encoded", "500-encoded", "500-split"):
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if fault.endswith("split"):
                    half = len(key) // 2
                    body = {"error": {"message": f"bad key {key[:half]}\n{key[half:]}", "key_start": key[:half], "key_end": key[half:]}}
                else:
                    body = {"error": {"message": f"Incorrect API key provided: {key.replace('-', '%2D')}."}}
                return self._json(int(fault[:3]), body)
            if fault == "429":
                return self._json(429, {"error": {"message": "Rate limit reached", "type": "requests"}},
                                  {"Retry-After": server.retry_after})
            if fault == "500":
                return self._json(500, {"error": {"message": "internal error"}})
            if fault and fault.isdigit():  # any other status, e.g. "400", "403", "503"
                return self._json(int(fault), {"error": {"message": f"status {fault}"}})
            if fault == "slow":
                time.sleep(server.slow_seconds)
            if fault == "drop":
                return self._drop()
            if fault == "malformed":
                return self._send(200, b'{"id": "chatcmpl-x", "choices": [', ctype="application/json")
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            answer = {
                "leak-key": f"{server.answer(text)} (key {key.replace('-', '%2D')})",  # a translation carrying the key
                "refusal": "I'm sorry, but I can't help with that.",
                "echo": text,
                "cyrillic": "Перевод этого текста",
                "empty": "",
            }.get(fault or "", server.answer(text))
            body = completion(req["model"], text, answer)
            if server.full_answers:
                limit = req.get("max_tokens") or req.get("max_completion_tokens")
                system = req["messages"][0]["content"] if len(req["messages"]) > 1 else ""
                prompt = server.count_prompt(system, text) if server.count_prompt else body["usage"]["prompt_tokens"]
                body["usage"] = {"prompt_tokens": prompt, "completion_tokens": limit, "total_tokens": prompt + limit}
            with server.lock:
                server.served += 1
                server.billed["answers"] += 1
                server.billed["prompt_tokens"] += body["usage"]["prompt_tokens"]
                server.billed["completion_tokens"] += body["usage"]["completion_tokens"]
            self._json(200, body)

        def _upload(self) -> None:
            ctype = self.headers.get("Content-Type", "")
            boundary = ctype.split("boundary=")[-1].strip('"').encode()
            data = self._body()
            content, purpose, filename = b"", "", "upload.jsonl"
            for part in data.split(b"--" + boundary):
                head, _, body = part.partition(b"\r\n\r\n")
                body = body.rsplit(b"\r\n", 1)[0]
                if b'name="file"' in head:
                    content = body
                    m = re.search(rb'filename="([^"]*)"', head)
                    filename = m.group(1).decode() if m else filename
                elif b'name="purpose"' in head:
                    purpose = body.decode()
            fid = "file-" + uuid.uuid4().hex[:12]
            server.files[fid] = content
            self._json(200, {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                             "filename": filename, "purpose": purpose, "status": "processed"})

        def _list_batches(self, query: dict) -> None:
            limit = max(1, min(100, int(query.get("limit", ["20"])[0])))
            after = query.get("after", [None])[0]
            with server.lock:
                server.batch_lists += 1
                newest_first = list(reversed(server.batches.values()))
            ids = [b["id"] for b in newest_first]
            start = ids.index(after) + 1 if after in ids else 0
            page = newest_first[start:start + limit]
            self._json(200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                             "last_id": page[-1]["id"] if page else None, "has_more": start + limit < len(ids)})

        def _create_batch(self) -> None:
            req = json.loads(self._body())
            bid = "batch_" + uuid.uuid4().hex[:12]
            batch = {"id": bid, "object": "batch", "endpoint": req["endpoint"], "input_file_id": req["input_file_id"],
                     "completion_window": req["completion_window"], "status": "validating", "created_at": int(time.time()),
                     "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": req.get("metadata")}
            server.batches[bid] = batch
            if server.create_faults and server.create_faults.pop(0) == "drop":
                return self._drop()
            self._json(200, batch)

    return Handler
