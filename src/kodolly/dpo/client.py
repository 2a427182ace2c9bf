"""The translator: one chat-completions request per text through the official ``openai`` client, with
kodolly's own retry policy.

The client is created with ``max_retries=0`` so every retry is kodolly's and is counted:

* retried with exponential backoff and full jitter (``base * 2**attempt``, capped), honouring
  ``Retry-After`` / ``retry-after-ms`` when the server sends one: HTTP 429, 5xx, 408/409, timeouts,
  dropped connections and answers that are not the JSON of a chat completion;
* fatal at once (:class:`ApiFatalError`, the run stops with one line): 400, 401, 403, 404 and 422 —
  retrying a bad key or a bad model name only burns time;
* after ``max_retries`` failed attempts a text fails with ``dpo_api_error`` (the run goes on).

The API key is read from the environment by the caller and handed to the client; it is never put in
a message: :func:`redact` removes it from anything the server sends back.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import urlsplit

from ..errors import KodollyError, require
from ..scrub import scrub_secret

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_SYSTEM_PROMPT = (
    "Translate the user's Korean text into natural English. Keep the meaning, the formatting, "
    "lists, numbers and code unchanged. Reply with the translation only, no notes."
)
FATAL_STATUS = {400, 401, 403, 404, 422}
TOKEN_PARAMS = ("auto", "max_tokens", "max_completion_tokens")
# OpenAI's reasoning models (o1, o3, o4-mini, gpt-5, ...) answer 400 to ``max_tokens`` and to any temperature
# but the default; they take ``max_completion_tokens`` (which also bounds their hidden reasoning tokens)
_REASONING_MODEL = re.compile(r"^(o\d+|gpt-5)([-.:_].*)?$")


def is_reasoning_model(model: str) -> bool:
    """True for OpenAI reasoning-model names (``o1``, ``o3-mini``, ``o4-mini-2025-04-16``, ``gpt-5-nano``, ...)."""
    name = model.strip().lower().rsplit("/", 1)[-1]  # "openai/o3" as some proxies spell it
    return bool(_REASONING_MODEL.match(name))


def token_param_name(model: str, token_param: str = "auto") -> str:
    """``max_completion_tokens`` for reasoning models (or when forced), else ``max_tokens`` — which local
    OpenAI-compatible servers (vLLM, Ollama, llama.cpp) all accept."""
    if token_param not in TOKEN_PARAMS:
        raise ValueError(f"token_param must be one of {', '.join(TOKEN_PARAMS)}")
    if token_param != "auto":
        return token_param
    return "max_completion_tokens" if is_reasoning_model(model) else "max_tokens"


def request_params(model: str, temperature: float, max_tokens: int | None, token_param: str = "auto") -> dict[str, Any]:
    """The request's parameters besides model and messages, as they go into the cache signature.

    For ``max_tokens`` models this is ``{"temperature", "max_tokens"}`` exactly as before, so existing
    caches stay valid. Reasoning models get no temperature (they accept only the default).
    """
    name = token_param_name(model, token_param)
    params: dict[str, Any] = {} if is_reasoning_model(model) else {"temperature": temperature}
    params[name] = max_tokens
    return params


class ApiFatalError(KodollyError):
    """The API refused the run itself (bad key, no access, bad request): stop at once."""

    exit_code = 4


class ApiUnreachableError(ApiFatalError):
    """No answer at all from the API (connection refused, no route, every attempt timed out): stop at once."""


class TransientError(Exception):
    """One attempt failed in a way worth retrying.

    ``usage``: what the response reported, when one arrived and said (a malformed 200 or an error body can
    carry usage); ``maybe_billed``: the request may have been completed and billed without the client
    seeing its usage (timed out, connection dropped after sending, a 200 that is not JSON)."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None, *, usage: "Usage | None" = None,
                 maybe_billed: bool = False) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.retry_after = retry_after
        self.usage = usage
        self.maybe_billed = maybe_billed


class RequestFailed(Exception):
    """A text could not be translated after all retries."""

    def __init__(self, detail: str, kind: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind  # kind of the last failure ("connection", "timeout", "http_500", ...)

def redact(text: str, secret: str | None) -> str:
    """``text`` without ``secret`` in any form a server may echo it (see :mod:`kodolly.scrub`)."""
    return scrub_secret(text, secret)


def base_url_host(base_url: str | None) -> str | None:
    """Only the host (and port) of a base URL: never its path, query or userinfo."""
    if not base_url:
        return "api.openai.com"
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def parse_retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


@dataclass
class RetryPolicy:
    max_retries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # never sleep longer than this for one Retry-After (a server asking for a day gets this, with a notice)
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0, min(self.max_delay, self.base_delay * (2 ** attempt)))
        if retry_after is not None:
            return min(self.max_retry_after, max(retry_after, backoff * 0.1 + retry_after))
        return backoff


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


def usage_of(body: Any) -> Usage | None:
    """The ``usage`` a response body reports, or None when it reports none."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    try:
        return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


@dataclass
class Completion:
    text: str
    usage: Usage
    attempts: int


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    responses: int = 0  # HTTP responses received, any status: 0 means the API was never reached
    late_answers: int = 0  # answers that arrived after the client had stopped waiting (their usage is counted)
    retry_after_clamped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, requests: int = 0, retry_kind: str | None = None, responses: int = 0, late: int = 0, clamped: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.responses += responses
            self.late_answers += late
            self.retry_after_clamped += clamped
            if retry_kind:
                self.retries += 1
                self.by_kind[retry_kind] = self.by_kind.get(retry_kind, 0) + 1


class Ticket(Protocol):
    """The cost side of one attempt (see :class:`kodolly.dpo.engine.Meter`): opened before it is sent,
    closed once with what is known of its usage."""

    def close(self, usage: Usage | None, maybe_billed: bool = False) -> None: ...


def make_client(api_key: str, base_url: str | None, timeout: float):
    openai = require("openai", "dpo")
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


def parse_completion(body: Any) -> tuple[str, Usage]:
    """Text and usage of a chat completion (a dict); TransientError('malformed') if it is not one."""
    try:
        choice = body["choices"][0]
        content = choice["message"].get("content")
        text = content if isinstance(content, str) else ""
        return text, usage_of(body) or Usage()
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # a body that is not a completion may still say what it cost
        raise TransientError("malformed", f"not a chat completion ({type(exc).__name__})", usage=usage_of(body), maybe_billed=usage_of(body) is None) from exc


class Translator:
    """Sends translation requests, with kodolly's retry policy.

    Each attempt waits ``timeout`` seconds for its answer; then the client stops waiting and retries, but the
    HTTP request is left open for ``late_wait`` more seconds in the background, so an answer the server
    completes late is still received and its usage counted (:attr:`Stats.late_answers`). An attempt with no
    answer even then (or whose connection dropped after it was sent) may have been billed without the client
    ever seeing its usage: the engine's meter keeps its worst case as possibly spent.
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str = DEFAULT_MODEL,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        temperature: float = 0.0,
        max_tokens: int | None = 2048,
        token_param: str = "auto",
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        seed: int | None = None,
        stop_event: threading.Event | None = None,
        timeout: float | None = None,
        late_wait: float = 0.0,
        notice: Callable[[str], None] | None = None,
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.model = model
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.token_param = token_param_name(model, token_param)
        self._params = request_params(model, temperature, max_tokens, token_param)
        self.retry = retry or RetryPolicy()
        self.stats = Stats()
        self.secret = api_key  # only to scrub it from what comes back; never sent anywhere but the client
        self._rng = random.Random(seed)
        self._stop = stop_event or threading.Event()
        self.timeout = timeout
        self.late_wait = late_wait
        self._notice = notice or (lambda msg: None)
        self._lock = threading.Lock()
        self._concurrency = max(1, concurrency)
        self._sender: ThreadPoolExecutor | None = None
        self._late: set[Future] = set()

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def messages(self, text: str) -> list[dict[str, str]]:
        msgs = []
        if self.system_prompt:
            msgs.append({"role": "system", "content": self.system_prompt})
        msgs.append({"role": "user", "content": text})
        return msgs

    def request_body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": self.messages(text)}
        body.update((k, v) for k, v in self._params.items() if v is not None)
        return body

    def _send(self, body: dict[str, Any]) -> tuple[str, Usage]:
        """One HTTP request; raises TransientError / ApiFatalError (runs in the sender pool)."""
        with self.openai_errors():
            raw = self.client.chat.completions.with_raw_response.create(**body)
        self.stats.count(responses=1)
        try:
            data = json.loads(raw.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TransientError("malformed", "answer is not JSON", maybe_billed=True) from exc
        return parse_completion(data)

    def translate(self, text: str, open_ticket: Callable[[], Ticket] | None = None) -> Completion:
        """One translation, retried per the policy. Raises ApiFatalError or RequestFailed (or whatever
        ``open_ticket`` raises, e.g. BudgetExceeded, before an attempt is sent)."""
        body = self.request_body(text)
        total = Usage()

        def once() -> tuple[str, Usage]:
            ticket = open_ticket() if open_ticket is not None else None
            self.stats.count(requests=1)  # counted once it is really sent (a refused reservation sends nothing)
            if self.timeout is None:
                fut: Future = Future()
                try:
                    fut.set_result(self._send(body))
                except BaseException as exc:  # noqa: BLE001 - handed to the same path as the pool's
                    fut.set_exception(exc)
            else:
                fut = self._pool().submit(self._send, body)
                done, _ = wait([fut], timeout=self.timeout)
                if not done:
                    if fut.cancel():  # never started: nothing was sent
                        if ticket is not None:
                            ticket.close(None)
                    else:
                        self._leave_running(fut, ticket)
                    raise TransientError("timeout", f"no answer within {self.timeout:g} s")
            try:
                content, usage = fut.result()
            except TransientError as exc:
                if ticket is not None:
                    ticket.close(exc.usage, exc.maybe_billed)
                if exc.usage is not None:
                    total.prompt_tokens += exc.usage.prompt_tokens
                    total.completion_tokens += exc.usage.completion_tokens
                raise
            except BaseException:
                if ticket is not None:
                    ticket.close(None)
                raise
            if ticket is not None:
                ticket.close(usage)
            total.prompt_tokens += usage.prompt_tokens
            total.completion_tokens += usage.completion_tokens
            return content, usage

        (content, _), attempts = self.call(once, count_request=False)
        return Completion(content, total, attempts)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._sender is None:
                self._sender = ThreadPoolExecutor(max_workers=2 * self._concurrency + 2, thread_name_prefix="kodolly-dpo-send")
            return self._sender

    def _leave_running(self, fut: Future, ticket: Ticket | None) -> None:
        """The client stopped waiting for ``fut``; its answer, if it comes, is still counted."""
        with self._lock:
            self._late.add(fut)

        def arrived(f: Future) -> None:
            with self._lock:
                self._late.discard(f)
            exc = f.exception()
            usage, maybe_billed = None, True
            if exc is None:
                usage, maybe_billed = f.result()[1], False
                self.stats.count(late=1)
            elif isinstance(exc, TransientError):
                usage, maybe_billed = exc.usage, exc.maybe_billed or exc.kind in ("timeout", "connection")
            if ticket is not None:
                ticket.close(usage, maybe_billed)

        fut.add_done_callback(arrived)

    def drain(self, wait_seconds: float | None = None) -> int:
        """Wait (up to ``wait_seconds``, default ``late_wait``) for answers the client stopped waiting for;
        returns how many are still open (their tickets stay open: the caller settles them)."""
        with self._lock:
            pending = list(self._late)
        if pending:
            wait(pending, timeout=self.late_wait if wait_seconds is None else wait_seconds)
        with self._lock:
            left = len(self._late)
        return left

    def close(self) -> None:
        if self._sender is not None:
            self._sender.shutdown(wait=False, cancel_futures=True)

    def call(self, fn: Callable[[], Any], *, count_request: bool = True) -> tuple[Any, int]:
        """Run ``fn`` (an API call) with the retry policy; returns (result, attempts)."""
        attempt = 0
        while True:
            if self._stop.is_set():
                raise RequestFailed("run stopped", "stopped")
            if count_request:
                self.stats.count(requests=1)
            try:
                with self.openai_errors():
                    return fn(), attempt + 1
            except TransientError as exc:
                if attempt >= self.retry.max_retries:
                    raise RequestFailed(f"gave up after {attempt + 1} attempts; last: {exc}", exc.kind) from None
                self.stats.count(retry_kind=exc.kind)
                self._clamp_notice(exc.retry_after)
                delay = self.retry.delay(attempt, exc.retry_after, self._rng)
                attempt += 1
                if self._stop.wait(delay):
                    raise RequestFailed("run stopped", "stopped") from None

    def _clamp_notice(self, retry_after: float | None) -> None:
        cap = self.retry.max_retry_after
        if retry_after is None or retry_after <= cap:
            return
        with self._lock:
            first = self.stats.retry_after_clamped == 0
            self.stats.count(clamped=1)
        if first:
            self._notice(f"kodolly: notice: the server asked to wait {retry_after:g} s before retrying (Retry-After); "
                         f"waiting {cap:g} s instead (--max-retry-after); later ones are counted in the manifest")

    @contextmanager
    def openai_errors(self) -> Iterator[None]:
        """Turn the client's exceptions into TransientError / ApiFatalError (key redacted)."""
        openai = require("openai", "dpo")
        try:
            yield
        except openai.APITimeoutError as exc:
            raise TransientError("timeout", "request timed out", maybe_billed=True) from exc
        except openai.APIConnectionError as exc:
            # refused / no route: never sent; dropped after sending: the server may have done the work
            sent = type(exc.__cause__).__name__ not in ("ConnectError", "ConnectTimeout")
            raise TransientError("connection", redact(str(exc), self.secret), maybe_billed=sent) from exc
        except openai.APIStatusError as exc:
            self.stats.count(responses=1)
            status = exc.status_code
            message = redact(_error_message(exc), self.secret)
            if status in FATAL_STATUS:
                raise ApiFatalError(f"the API refused the request (HTTP {status}): {message}") from None
            kind = "rate_limit" if status == 429 else f"http_{status}"
            raise TransientError(kind, message, parse_retry_after(exc.response.headers), usage=_response_usage(exc.response)) from None
        except (ValueError, TypeError) as exc:  # the client could not decode the answer
            raise TransientError("malformed", type(exc).__name__, maybe_billed=True) from exc


def _response_usage(response: Any) -> Usage | None:
    """Usage reported in an error response's body (some servers and proxies say what a failed call cost)."""
    try:
        return usage_of(json.loads(response.content))
    except Exception:  # noqa: BLE001 - no readable body: no usage
        return None


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(getattr(exc, "message", "") or exc)[:300]
