"""The translation engine: cache first, identical texts once, a bounded thread pool, budget and rate limits.

:meth:`Engine.lookup` answers a text at once (cache hit, earlier failure in this run, skipped) or with a
future shared by every row with the same text (in-flight dedupe). A worker claims the text in the cache
(another run sharing the cache that holds the claim is waited for, and its answer reused), then for each
attempt reserves its worst-case cost (refused past ``--max-cost``) and waits for the RPM/TPM buckets,
sends the request (retried per the policy), settles the real cost of every response that arrives (late
ones too), checks the translation (a bad one is asked for once more), and commits the result to the cache
before it returns — so a kill after that point never pays for it again.

Cost accounting: every response the client receives is counted with the usage it reports (a good answer,
a rejected translation, a malformed 200 or an error body that says what it cost, an answer that arrives
after the client stopped waiting). Not countable: an attempt whose answer never reaches the client (the
server was slower than ``timeout + late_wait``, or dropped the connection after the request was sent) —
the OpenAI API reports those only in the account's usage dashboard. Their worst case is counted as
*possibly spent* (``unreported_attempts``, ``cost_unreported_max_usd``), and the budget treats it as spent.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .cache import TranslationCache, cache_key
from .checks import translation_problem
from .client import ApiFatalError, ApiUnreachableError, RequestFailed, Translator, Usage
from .pricing import Budget, BudgetExceeded, PriceTable, worst_case_tokens
from .ratelimit import RateLimiter
from .tokens import TokenCounter


@dataclass(frozen=True)
class Outcome:
    translation: str | None
    reason: str | None = None
    detail: str = ""


@dataclass
class Counters:
    cache_hits: int = 0
    deduped: int = 0
    check_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    from_other_runs: int = 0  # texts another run sharing the cache was translating: waited for, reused
    unreported_attempts: int = 0
    cost_unreported_max_usd: float = 0.0


class _Ticket:
    """The cost of one attempt: reserved at its worst case when opened, settled once."""

    def __init__(self, engine: "Engine", worst: float, est_tokens: int) -> None:
        self.engine = engine
        self.worst = worst
        self.est_tokens = est_tokens
        self._closed = False
        self._lock = threading.Lock()

    def close(self, usage: Usage | None, maybe_billed: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.engine.close_ticket(self, usage, maybe_billed)


class Engine:
    def __init__(
        self,
        translator: Translator,
        cache: TranslationCache,
        signature: str,
        *,
        prices: PriceTable,
        budget: Budget,
        limiter: RateLimiter,
        counter: TokenCounter,
        concurrency: int = 8,
        batch_pricing: bool = False,
        stop_event: threading.Event | None = None,
        claim_ttl: float = 60.0,
        claim_poll: float = 0.05,
    ) -> None:
        self.translator = translator
        self.cache = cache
        self.signature = signature
        self.prices = prices
        self.budget = budget
        self.limiter = limiter
        self.counter = counter
        self.batch_pricing = batch_pricing
        self.stop = stop_event or threading.Event()
        self.counters = Counters()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.claim_ttl = claim_ttl
        self.claim_poll = claim_poll
        self._lock = threading.Lock()
        self._pending: dict[str, Future] = {}
        self._done: dict[str, Outcome] = {}  # failures of this run, so a repeated text is not asked again
        self._open: set[_Ticket] = set()
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="kodolly-dpo")
        self._beat_stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="kodolly-dpo-claims", daemon=True)
        self._beat.start()

    def key(self, text: str) -> str:
        return cache_key(self.signature, text)

    def lookup(self, text: str) -> Outcome | Future:
        key = self.key(text)
        if key in self._done:
            self.counters.deduped += 1
            return self._done[key]
        fut = self._pending.get(key)
        if fut is not None:
            self.counters.deduped += 1
            return fut
        cached = self.cache.get(key)
        if cached is not None:
            self.counters.cache_hits += 1
            return Outcome(cached.translation, cached.reason, "cached" if cached.reason else "")
        fut = self._pool.submit(self._work, key, text)
        self._pending[key] = fut
        return fut

    def settle(self, text: str, outcome: Outcome) -> None:
        """Called by the consumer once an outcome is taken: frees the in-flight slot of the text."""
        key = self.key(text)
        fut = self._pending.pop(key, None)
        if fut is not None and outcome.reason is not None:
            self._done[key] = outcome

    # cost of attempts ------------------------------------------------------------------------

    def _open_ticket(self, text: str) -> _Ticket:
        tr = self.translator
        prompt, completion = worst_case_tokens(self.counter, tr.system_prompt, text, tr.max_tokens)
        worst = self.prices.cost(tr.model, prompt, completion, batch=self.batch_pricing)
        self.budget.reserve(worst, wait=True)  # BudgetExceeded: not sent
        est_tokens = prompt + self.counter.completion_estimate(text, tr.max_tokens)
        self.limiter.acquire(est_tokens)
        ticket = _Ticket(self, worst, est_tokens)
        with self._lock:
            self._open.add(ticket)
        return ticket

    def close_ticket(self, ticket: _Ticket, usage: Usage | None, maybe_billed: bool) -> None:
        with self._lock:
            self._open.discard(ticket)
        if usage is not None:
            cost = self.prices.cost(self.translator.model, usage.prompt_tokens, usage.completion_tokens, batch=self.batch_pricing)
            self.budget.settle(ticket.worst, cost)
            self.limiter.correct(ticket.est_tokens, usage.prompt_tokens + usage.completion_tokens)
            with self._lock:
                self.counters.prompt_tokens += usage.prompt_tokens
                self.counters.completion_tokens += usage.completion_tokens
                self.counters.cost_usd += cost
        elif maybe_billed:
            self.budget.settle_unknown(ticket.worst)
            with self._lock:
                self.counters.unreported_attempts += 1
                self.counters.cost_unreported_max_usd += ticket.worst
        else:
            self.budget.release(ticket.worst)

    # claims ------------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        while not self._beat_stop.wait(max(0.05, self.claim_ttl / 4)):
            try:
                self.cache.heartbeat(self.owner)
            except Exception:  # noqa: BLE001 - a closed cache at shutdown; the next beat or the TTL decides
                pass

    def _claim(self, key: str) -> Outcome | None:
        """None when this run may send ``key``; else the answer another run stored while we waited."""
        waited = False
        while True:
            if self.stop.is_set():
                return Outcome(None, "dpo_api_error", "run stopped")
            got = self.cache.claim(key, self.owner, self.claim_ttl)
            if got is None:
                return None
            if not isinstance(got, str):
                with self._lock:
                    if waited:
                        self.counters.from_other_runs += 1
                    else:
                        self.counters.cache_hits += 1
                return Outcome(got.translation, got.reason, "cached" if got.reason else "")
            waited = True
            self.stop.wait(self.claim_poll)

    # the work of one text ----------------------------------------------------------------------

    def _work(self, key: str, text: str) -> Outcome:
        other = self._claim(key)
        if other is not None:
            return other
        try:
            return self._translate(key, text)
        finally:
            self.cache.release(key, self.owner)  # no-op once the result is stored (put drops the claim)

    def _translate(self, key: str, text: str) -> Outcome:
        tr = self.translator
        problem, answer = None, ""
        prompt_total = completion_total = 0
        for attempt in range(2):  # a bad translation is asked for once more
            if self.stop.is_set():
                return Outcome(None, "dpo_api_error", "run stopped")
            try:
                comp = tr.translate(text, lambda: self._open_ticket(text))
            except BudgetExceeded as exc:
                return Outcome(None, "dpo_budget_exceeded", str(exc))
            except RequestFailed as exc:
                if exc.kind in ("connection", "timeout") and tr.stats.responses == 0:
                    self.stop.set()
                    raise ApiUnreachableError(exc.detail) from None
                return Outcome(None, "dpo_api_error", exc.detail)
            except ApiFatalError:
                self.stop.set()
                raise
            prompt_total += comp.usage.prompt_tokens
            completion_total += comp.usage.completion_tokens
            answer = comp.text.strip()
            problem = translation_problem(text, answer, tr.secret)
            if problem is None:
                self.cache.put(key, tr.model, answer, None, prompt_total, completion_total)
                return Outcome(answer)
            if attempt == 0:
                with self._lock:
                    self.counters.check_retries += 1
        self.cache.put(key, tr.model, None, problem, prompt_total, completion_total)
        return Outcome(None, problem, answer[:200])

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the pool; in-flight requests finish (and reach the cache) before this returns. Answers the
        client stopped waiting for get ``late_wait`` more seconds (none when cancelling); attempts still
        without an answer then are counted as possibly spent."""
        if cancel:
            self.stop.set()
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        self.translator.drain(0.0 if cancel else None)
        with self._lock:
            left = list(self._open)
        for ticket in left:
            ticket.close(None, maybe_billed=True)
        self.translator.close()
        self._beat_stop.set()
        self._beat.join()
        self.cache.release_all(self.owner)
