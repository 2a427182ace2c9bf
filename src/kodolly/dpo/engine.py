"""The translation engine: cache first, identical texts once, a bounded thread pool, budget and rate limits.

:meth:`Engine.lookup` answers a text at once (cache hit, earlier failure in this run, skipped) or with a
future shared by every row with the same text (in-flight dedupe). A worker reserves the estimated cost
(refused past ``--max-cost``), waits for the RPM/TPM buckets, sends the request (retried per the policy),
settles the real cost, checks the translation (a bad one is asked for once more), and commits the
result to the cache before it returns — so a kill after that point never pays for it again.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .cache import TranslationCache, cache_key
from .checks import translation_problem
from .client import ApiFatalError, RequestFailed, Translator
from .pricing import Budget, BudgetExceeded, PriceTable
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
        self._lock = threading.Lock()
        self._pending: dict[str, Future] = {}
        self._done: dict[str, Outcome] = {}  # failures of this run, so a repeated text is not asked again
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="kodolly-dpo")

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

    def _account(self, prompt_tokens: int, completion_tokens: int, cost: float) -> None:
        with self._lock:
            self.counters.prompt_tokens += prompt_tokens
            self.counters.completion_tokens += completion_tokens
            self.counters.cost_usd += cost

    def _work(self, key: str, text: str) -> Outcome:
        tr = self.translator
        problem, answer = None, ""
        prompt_total = completion_total = 0
        for attempt in range(2):  # a bad translation is asked for once more
            est_prompt = self.counter.chat_prompt(tr.system_prompt, text)
            est_completion = self.counter.completion_estimate(text, tr.max_tokens)
            est_cost = self.prices.cost(tr.model, est_prompt, est_completion, batch=self.batch_pricing)
            try:
                self.budget.reserve(est_cost)
            except BudgetExceeded as exc:
                return Outcome(None, "dpo_budget_exceeded", str(exc))
            if self.stop.is_set():
                self.budget.release(est_cost)
                return Outcome(None, "dpo_api_error", "run stopped")
            self.limiter.acquire(est_prompt + est_completion)
            try:
                comp = tr.translate(text)
            except RequestFailed as exc:
                self.budget.release(est_cost)
                return Outcome(None, "dpo_api_error", exc.detail)
            except ApiFatalError:
                self.budget.release(est_cost)
                self.stop.set()
                raise
            cost = self.prices.cost(tr.model, comp.usage.prompt_tokens, comp.usage.completion_tokens, batch=self.batch_pricing)
            self.budget.settle(est_cost, cost)
            self.limiter.correct(est_prompt + est_completion, comp.usage.prompt_tokens + comp.usage.completion_tokens)
            self._account(comp.usage.prompt_tokens, comp.usage.completion_tokens, cost)
            prompt_total += comp.usage.prompt_tokens
            completion_total += comp.usage.completion_tokens
            answer = comp.text.strip()
            problem = translation_problem(text, answer)
            if problem is None:
                self.cache.put(key, tr.model, answer, None, prompt_total, completion_total)
                return Outcome(answer)
            if attempt == 0:
                with self._lock:
                    self.counters.check_retries += 1
        self.cache.put(key, tr.model, None, problem, prompt_total, completion_total)
        return Outcome(None, problem, answer[:200])

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the pool; in-flight requests finish (and reach the cache) before this returns."""
        if cancel:
            self.stop.set()
        self._pool.shutdown(wait=True, cancel_futures=cancel)
