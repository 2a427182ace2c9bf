"""Batch mode: the OpenAI Batch API (half price, results within 24 h).

One round: build the JSONL request file (split into several batches past 50,000 requests or 190 MB) (one line per unique uncached text, ``custom_id`` = its cache
key), upload it (``purpose="batch"``), create the batch (``/v1/chat/completions``, ``24h``) and store its
id and items in the cache database at once; poll until it ends, showing progress; download the output
and error files; map each result by ``custom_id`` into the cache. Items that failed, are missing
(``expired`` batch, ``failed`` batch) or came back with a bad translation (asked once more) go into the
next round, up to ``rounds`` rounds; what is still missing then is rejected with ``dpo_batch_failed``.

Resumable: batches recorded in the cache and not yet collected (same model / prompt / parameters) are
re-attached first by a restarted run instead of being created again. A kill between ``batches.create``
and storing the new id would orphan a paid batch, so a pending marker with the request file's id is stored
*before* the batch is created; a restarted run that finds a marker without a batch id lists the account's
batches (``GET /v1/batches``, newest first, back to shortly before the marker) and re-attaches to the one
whose ``input_file_id`` matches — or, when there is none (the kill came before the batch was created),
drops the marker so its texts are sent in a new batch.
A ``batches.create`` retried after a lost answer looks the same way for a batch made from its file before
creating another.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import orjson

from .cache import TranslationCache
from .checks import translation_problem
from .client import RequestFailed, Translator, parse_completion, TransientError
from .engine import Counters, Outcome
from .pricing import Budget, PriceTable, worst_case_tokens
from .tokens import TokenCounter

FINAL_STATUSES = {"completed", "failed", "expired", "cancelled"}
LIST_PAGE_SIZE = 100  # the API's largest page of GET /v1/batches
LIST_SLACK_SECONDS = 600  # clock skew allowed between this machine and the API when scanning the list
ENDPOINT = "/v1/chat/completions"


class BatchRunner:
    def __init__(
        self,
        translator: Translator,
        cache: TranslationCache,
        signature: str,
        *,
        prices: PriceTable,
        budget: Budget,
        counter: TokenCounter,
        counters: Counters,
        poll_interval: float = 30.0,
        rounds: int = 3,
        max_requests: int = 50_000,
        max_bytes: int = 190 * 1024 * 1024,
        on_progress: Callable[[str], None] | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.tr = translator
        self.client = translator.client
        self.cache = cache
        self.signature = signature
        self.prices = prices
        self.budget = budget
        self.counter = counter
        self.counters = counters
        self.poll_interval = poll_interval
        self.rounds = max(1, rounds)
        self.max_requests = max(1, max_requests)
        self.max_bytes = max_bytes
        self.on_progress = on_progress or (lambda msg: None)
        self.stop = stop_event or threading.Event()
        self.batch_ids: list[str] = []
        self._bad_once: set[str] = set()
        self.submitted = 0  # requests sent inside batches
        self._round_reserved = 0.0
        self.list_page_size = LIST_PAGE_SIZE

    def _api(self, fn: Callable[[], Any]) -> Any:
        return self.tr.call(fn, count_request=False)[0]

    def run(self, items: dict[str, str]) -> dict[str, Outcome]:
        """Translate ``items`` (cache key -> text) into the cache; returns the keys that failed."""
        failures: dict[str, Outcome] = {}
        self._recover_pending()
        for batch_id in self.cache.open_batches(self.signature):
            self.on_progress(f"re-attaching to batch {batch_id}")
            self._finish(batch_id, self.cache.batch_items(batch_id), failures)
        for _ in range(self.rounds):
            todo = {k: t for k, t in items.items() if self.cache.get(k) is None}
            if not todo:
                break
            todo = self._within_budget(todo, failures)
            if not todo:
                break
            chunks = self._chunks(todo)
            submitted = [(self._submit(chunk), chunk) for chunk in chunks]
            for batch_id, chunk in submitted:  # they run side by side at the API; collected in turn
                self._finish(batch_id, chunk, failures)
        for key in items:
            cached = self.cache.get(key)
            if cached is None and key not in failures:
                failures[key] = Outcome(None, "dpo_batch_failed", "no result after the last round")
            elif cached is not None:
                failures.pop(key, None)
        return failures

    def _recover_pending(self) -> None:
        """Re-attach batches created by a run killed before it stored their id (see the module doc)."""
        pending = self.cache.pending_batches(self.signature)
        if not pending:
            return
        found = self._find_batches({fid for fid, _ in pending}, since=min(t for _, t in pending) - LIST_SLACK_SECONDS)
        for file_id, _ in pending:
            batch_id = found.get(file_id)
            if batch_id is not None:
                self.on_progress(f"found batch {batch_id} created from {file_id} by a run that stopped before storing it")
                self.cache.attach_batch(file_id, batch_id)
            else:
                self.on_progress(f"no batch was created from {file_id}: its texts go into a new batch")
                self.cache.drop_pending(file_id)

    def _find_batches(self, file_ids: set[str], since: float) -> dict[str, str]:
        """input_file_id -> batch id for ``file_ids``, from the batch list (newest first) back to ``since``."""
        found: dict[str, str] = {}
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.list_page_size}
            if after:
                kwargs["after"] = after
            page = self._api(lambda: self.client.batches.list(**kwargs))
            data = list(page.data or [])
            for batch in data:
                if batch.input_file_id in file_ids and batch.input_file_id not in found:
                    found[batch.input_file_id] = batch.id
                if (batch.created_at or 0) < since:
                    return found
            if len(found) == len(file_ids) or not data or page.has_more is False:
                return found
            after = data[-1].id

    def _within_budget(self, todo: dict[str, str], failures: dict[str, Outcome]) -> dict[str, str]:
        if self.budget.max_cost is None:
            return todo
        kept = {}
        self._round_reserved = 0.0
        for key, text in todo.items():
            est = self.prices.cost(self.tr.model, *worst_case_tokens(self.counter, self.tr.system_prompt, text, self.tr.max_tokens), batch=True)
            try:
                self.budget.reserve(est)  # no waiting: this thread holds the round's other reservations
            except Exception as exc:
                failures[key] = Outcome(None, "dpo_budget_exceeded", str(exc))
                continue
            self._round_reserved += est
            kept[key] = text
        # the reservation stands for the batch's estimated cost until its results are counted
        return kept

    def _chunks(self, todo: dict[str, str]) -> list[dict[str, str]]:
        """Split into batches within the API's limits (requests per batch, bytes per input file)."""
        chunks: list[dict[str, str]] = [{}]
        size = 0
        for key, text in todo.items():
            line = len(orjson.dumps(self.tr.request_body(text))) + 200
            if chunks[-1] and (len(chunks[-1]) >= self.max_requests or size + line > self.max_bytes):
                chunks.append({})
                size = 0
            chunks[-1][key] = text
            size += line
        return chunks

    def _submit(self, todo: dict[str, str]) -> str:
        lines = [
            orjson.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": self.tr.request_body(text)})
            for key, text in todo.items()
        ]
        payload = b"\n".join(lines) + b"\n"
        uploaded = self._api(lambda: self.client.files.create(file=("kodolly-dpo-batch.jsonl", payload, "application/jsonl"), purpose="batch"))
        # marked before it is created: a kill before attach_batch leaves a marker a restart resolves
        self.cache.add_pending(uploaded.id, self.signature, todo.items())
        batch = self._create(uploaded.id)
        self.cache.attach_batch(uploaded.id, batch.id)
        self.submitted += len(todo)
        self.on_progress(f"created batch {batch.id} with {len(todo)} requests")
        return batch.id

    def _create(self, input_file_id: str):
        """Create the batch. A retried create (timeout, dropped connection) first looks for a batch the lost
        attempt may have made from the same file, so a retry never makes (and pays for) a second one."""
        marked = time.time()
        attempts = 0

        def create():
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                found = self._find_batches({input_file_id}, since=marked - LIST_SLACK_SECONDS)
                if input_file_id in found:
                    return self.client.batches.retrieve(found[input_file_id])
            return self.client.batches.create(
                input_file_id=input_file_id, endpoint=ENDPOINT, completion_window="24h", metadata={"created_by": "kodolly build-dpo"}
            )

        return self._api(create)

    def _finish(self, batch_id: str, items: dict[str, str], failures: dict[str, Outcome]) -> None:
        if batch_id not in self.batch_ids:
            self.batch_ids.append(batch_id)
        batch = self._poll(batch_id)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = self._api(lambda fid=file_id: self.client.files.content(fid).content)
                self._collect(content, items, failures)
        if batch.status == "failed":
            errors = getattr(batch, "errors", None)
            data = getattr(errors, "data", None) or []
            detail = "; ".join(f"{getattr(e, 'code', '')}: {getattr(e, 'message', '')}" for e in data) or "batch failed"
            for key in items:
                if self.cache.get(key) is None:
                    failures[key] = Outcome(None, "dpo_batch_failed", f"batch {batch_id} {detail}")
        elif batch.status in ("expired", "cancelled"):
            for key in items:
                if self.cache.get(key) is None and key not in failures:
                    failures[key] = Outcome(None, "dpo_batch_failed", f"batch {batch_id} {batch.status}")
        # this round's reservation is replaced by the real cost of its results (added in _collect)
        self.budget.release(self._round_reserved)
        self._round_reserved = 0.0
        self.cache.finish_batch(batch_id, batch.status)

    def _poll(self, batch_id: str):
        while True:
            batch = self._api(lambda: self.client.batches.retrieve(batch_id))
            counts = getattr(batch, "request_counts", None)
            if counts is not None:
                self.on_progress(f"batch {batch_id}: {batch.status} {counts.completed}/{counts.total} done, {counts.failed} failed")
            else:
                self.on_progress(f"batch {batch_id}: {batch.status}")
            if batch.status in FINAL_STATUSES:
                return batch
            if self.stop.wait(self.poll_interval):
                raise RequestFailed("run stopped")

    def _collect(self, content: bytes, items: dict[str, str], failures: dict[str, Outcome]) -> None:
        for line in content.splitlines():
            if not line.strip():
                continue
            try:
                result = orjson.loads(line)
                key = result["custom_id"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            text = items.get(key)
            if text is None or self.cache.get(key) is not None:
                continue
            response = result.get("response") or {}
            if result.get("error") or response.get("status_code") != 200:
                err = result.get("error") or (response.get("body") or {}).get("error") or {}
                message = err.get("message", "") if isinstance(err, dict) else str(err)
                failures[key] = Outcome(None, "dpo_batch_failed", f"HTTP {response.get('status_code')}: {message}"[:200])
                continue
            try:
                answer, usage = parse_completion(response.get("body"))
            except TransientError as exc:
                failures[key] = Outcome(None, "dpo_batch_failed", str(exc))
                continue
            cost = self.prices.cost(self.tr.model, usage.prompt_tokens, usage.completion_tokens, batch=True)
            self.budget.add(cost)
            self.counters.prompt_tokens += usage.prompt_tokens
            self.counters.completion_tokens += usage.completion_tokens
            self.counters.cost_usd += cost
            answer = answer.strip()
            problem = translation_problem(text, answer, self.tr.secret)
            if problem is None:
                self.cache.put(key, self.tr.model, answer, None, usage.prompt_tokens, usage.completion_tokens)
                failures.pop(key, None)
            elif key not in self._bad_once:  # ask once more in the next round
                self._bad_once.add(key)
                self.counters.check_retries += 1
                failures[key] = Outcome(None, problem, answer[:200])
            else:
                self.cache.put(key, self.tr.model, None, problem, usage.prompt_tokens, usage.completion_tokens)
                failures[key] = Outcome(None, problem, answer[:200])
