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
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from ..errors import KodollyError, require

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


class TransientError(Exception):
    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.retry_after = retry_after


class RequestFailed(Exception):
    """A text could not be translated after all retries."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


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
    # never sleep longer than this for one Retry-After (a server asking for an hour is treated as a failure)
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


@dataclass
class Completion:
    text: str
    usage: Usage
    attempts: int


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, requests: int = 0, retry_kind: str | None = None) -> None:
        with self._lock:
            self.requests += requests
            if retry_kind:
                self.retries += 1
                self.by_kind[retry_kind] = self.by_kind.get(retry_kind, 0) + 1


def make_client(api_key: str, base_url: str | None, timeout: float):
    openai = require("openai", "dpo")
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


def parse_completion(body: Any) -> tuple[str, Usage]:
    """Text and usage of a chat completion (a dict); TransientError('malformed') if it is not one."""
    try:
        choice = body["choices"][0]
        content = choice["message"].get("content")
        usage = body.get("usage") or {}
        text = content if isinstance(content, str) else ""
        return text, Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise TransientError("malformed", f"not a chat completion ({type(exc).__name__})") from exc


class Translator:
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
        self._secret = api_key
        self._rng = random.Random(seed)
        self._stop = stop_event or threading.Event()

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

    def translate(self, text: str) -> Completion:
        """One translation, retried per the policy. Raises ApiFatalError or RequestFailed."""
        body = self.request_body(text)

        def once() -> tuple[str, Usage]:
            raw = self.client.chat.completions.with_raw_response.create(**body)
            try:
                data = json.loads(raw.content)
            except (ValueError, UnicodeDecodeError) as exc:
                raise TransientError("malformed", "answer is not JSON") from exc
            return parse_completion(data)

        (content, usage), attempts = self.call(once)
        return Completion(content, usage, attempts)

    def call(self, fn: Callable[[], Any], *, count_request: bool = True) -> tuple[Any, int]:
        """Run ``fn`` (an API call) with the retry policy; returns (result, attempts)."""
        attempt = 0
        while True:
            if self._stop.is_set():
                raise RequestFailed("run stopped")
            if count_request:
                self.stats.count(requests=1)
            try:
                with self.openai_errors():
                    return fn(), attempt + 1
            except TransientError as exc:
                if attempt >= self.retry.max_retries:
                    raise RequestFailed(f"gave up after {attempt + 1} attempts; last: {exc}") from None
                self.stats.count(retry_kind=exc.kind)
                delay = self.retry.delay(attempt, exc.retry_after, self._rng)
                attempt += 1
                if self._stop.wait(delay):
                    raise RequestFailed("run stopped") from None

    @contextmanager
    def openai_errors(self) -> Iterator[None]:
        """Turn the client's exceptions into TransientError / ApiFatalError (key redacted)."""
        openai = require("openai", "dpo")
        try:
            yield
        except openai.APITimeoutError as exc:
            raise TransientError("timeout", "request timed out") from exc
        except openai.APIConnectionError as exc:
            raise TransientError("connection", redact(str(exc), self._secret)) from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            message = redact(_error_message(exc), self._secret)
            if status in FATAL_STATUS:
                raise ApiFatalError(f"the API refused the request (HTTP {status}): {message}") from None
            kind = "rate_limit" if status == 429 else f"http_{status}"
            raise TransientError(kind, message, parse_retry_after(exc.response.headers)) from None
        except (ValueError, TypeError) as exc:  # the client could not decode the answer
            raise TransientError("malformed", type(exc).__name__) from exc


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(getattr(exc, "message", "") or exc)[:300]
