"""``build_dpo``: kodolly rows in, DPO pairs out — with rejects, a tally that adds up and a manifest.

Modes: ``translate`` (the Korean response is ``chosen``, its English translation ``rejected``; live
requests, or the Batch API with ``batch=True``), ``ranked`` and ``existing`` (no API, see
:mod:`kodolly.dpo.pairs`). Rows come out in input order whatever order the answers arrive in.

Every input row ends in the output or in the rejects file with a reason (see :mod:`kodolly.dpo.checks`,
:mod:`kodolly.dpo.pairs`, plus ``dpo_api_error`` — no answer after all retries, ``dpo_batch_failed`` — no
result from the Batch API after the last round, ``dpo_budget_exceeded`` — not sent because of
``max_cost``). A run the API refuses (400/401/403, :class:`ApiFatalError`) or that cannot reach it at all
(:class:`ApiUnreachableError`: no HTTP answer ever) stops at once: what was translated stays in the cache,
and no output file appears under its final name. Rows that got no answer although the API answered others
are written to the rejects file, and :attr:`DpoResult.failed` counts them by reason (the CLI exits 6).

Memory stays bounded whatever the input size: the input is read ``chunk_rows`` rows at a time
(:mod:`kodolly.dpo.source`), at most ``window`` rows wait for their translation (requests run in a pool of
``concurrency`` threads), and pairs are written in input order as soon as the oldest waiting row has its
answer. Batch mode makes a first streaming pass to collect the unique texts to send (the Batch API needs
them up front), then a second pass writes the pairs from the cache.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import platform
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa

from ..errors import ConfigError
from ..io.readers import Location
from ..io.writers import file_hash, output_paths
from ..corridor import Sink, reject_record
from ..tally import Tally
from .cache import TranslationCache, default_cache_path, request_signature
from .checks import skip_reason
from .client import (DEFAULT_MODEL, DEFAULT_SYSTEM_PROMPT, TOKEN_PARAMS, ApiFatalError, ApiUnreachableError, RequestFailed, RetryPolicy,
                     Translator, base_url_host, make_client, redact, request_params)
from .engine import Counters, Engine, Outcome
from .output import LAYOUTS, DpoWriter, layout_schema, make_pair
from .pairs import existing_pair, ranked_pairs
from .pricing import Budget, PriceTable
from .ratelimit import RateLimiter
from .source import Inputs
from .tokens import TokenCounter

MODES = ("translate", "ranked", "existing")


@dataclass
class DpoOptions:
    mode: str = "translate"
    batch: bool = False
    model: str = DEFAULT_MODEL
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    temperature: float = 0.0
    max_tokens: int | None = 2048
    token_param: str = "auto"  # auto: max_completion_tokens for OpenAI reasoning models (o1/o3/o4/gpt-5), else max_tokens
    base_url: str | None = None
    timeout: float = 60.0
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    max_retries: int = 6
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is clamped to this, with a notice
    late_wait: float = 30.0  # seconds past the timeout an abandoned attempt may still answer (its usage is counted)
    claim_ttl: float = 60.0  # a claim on a text whose run shows no heartbeat for this long is stale
    cache_path: str | None = None
    retry_rejected: bool = False  # ask again for texts whose translation an earlier run rejected (refusal, echo, ...)
    poll_interval: float = 30.0
    batch_rounds: int = 3
    batch_max_requests: int = 50_000
    prices_path: str | None = None
    dry_run: bool = False
    max_cost: float | None = None
    layout: str = "dolly"
    all_pairs: bool = False
    output_format: str | None = None
    rejects_path: str | None = None
    progress: bool | None = None
    api_key_env: str = "OPENAI_API_KEY"
    window: int = 1024  # rows waiting for their translation, at most, before the oldest is written
    chunk_rows: int = 2048  # input rows read at a time (the input is never held in memory whole)
    html_report: bool = False  # also write <out>.report.html (kodolly build-dpo does by default)
    tokenizer: str | None = None  # a local tokenizer folder: token counts on the HTML page

    def check(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown pairs mode {self.mode!r}; one of {', '.join(MODES)}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {self.layout!r}; one of {', '.join(LAYOUTS)}")
        if self.token_param not in TOKEN_PARAMS:
            raise ConfigError(f"unknown token parameter {self.token_param!r}; one of {', '.join(TOKEN_PARAMS)}")
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        if self.max_cost is not None and self.max_cost < 0:
            raise ConfigError("--max-cost must not be negative")
        if self.max_cost is not None and self.mode == "translate" and not self.max_tokens:
            raise ConfigError("--max-cost needs --max-tokens: without a token limit no request has a worst-case cost")
        if self.max_retry_after < 0:
            raise ConfigError("--max-retry-after must not be negative")

    def manifest_options(self) -> dict[str, Any]:
        """Settings that shaped the output (never the key, never a full base URL)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("base_url", "progress", "rejects_path", "cache_path", "output_format", "window", "chunk_rows", "claim_ttl",
                                                               "html_report", "tokenizer")}
        out["base_url_host"] = base_url_host(self.base_url) if self.mode == "translate" else None
        return out


@dataclass
class DpoResult:
    tally: Tally
    report: dict[str, Any] = field(default_factory=dict)
    estimate: dict[str, Any] | None = None
    output: Path | None = None
    rejects: Path | None = None
    manifest: Path | None = None
    manifest_data: dict[str, Any] | None = None
    report_html: Path | None = None
    budget_exhausted: bool = False
    failed: dict[str, int] = field(default_factory=dict)  # rows with no answer from the API, by reason

    @property
    def api_failures(self) -> int:
        return sum(self.failed.values())


FAILURE_REASONS = ("dpo_api_error", "dpo_batch_failed")


def _input_description(path: Path) -> dict[str, Any]:
    if path.is_dir():
        import xxhash

        files = sorted(p for p in path.rglob("*") if p.is_file())
        h = xxhash.xxh3_128()
        for p in files:
            h.update(str(p.relative_to(path)).encode() + b"\0" + file_hash(p).encode())
        return {"name": str(path), "bytes": sum(p.stat().st_size for p in files), "xxh3_128": h.hexdigest()}
    return {"name": str(path), "bytes": path.stat().st_size, "xxh3_128": file_hash(path)}


def _api_key(opts: DpoOptions) -> str:
    key = os.environ.get(opts.api_key_env)
    if key:
        return key
    if opts.base_url:
        return "not-needed"  # local OpenAI-compatible servers ignore the key
    raise ConfigError(f"{opts.api_key_env} is not set: export your OpenAI API key in the environment (it is never read from a file or an option)")


class _Run:
    """State of one build: the sink (writer, rejects, tally) and the pairs waiting to be written."""

    def __init__(self, opts: DpoOptions, schema: pa.Schema, paths, log: Callable[[str], None]) -> None:
        self.opts = opts
        self.schema = schema
        self.paths = paths
        self.log = log
        self.scrub: Callable[[str], str] = lambda text: text  # set by the translate mode: the API key in any form
        def writer(out):  # the DPO layouts' writer, its file staged in the sink's output set
            return DpoWriter(out.stage(paths.output), paths.format, schema, name=paths.output, scratch=out.scratch(paths.output, ".parquet"))

        html = None
        if opts.html_report and paths is not None:
            from ..report_html import HtmlOptions

            html = HtmlOptions(tokenizer=opts.tokenizer)
        self.sink = Sink(paths, writer=writer, keep_rows=paths is None, report=False, html=html)
        self.tally = self.sink.tally
        self.rows = self.sink.kept
        self._buffer: list[tuple[str, dict[str, Any]]] = []

    def emit(self, row: dict[str, Any], loc: Location, pairs: list[tuple[str, str, str]] | None, reason: str | None, detail: str = "") -> None:
        name = row.get("source") or "unknown"
        source = self.tally.source(name)
        detail = self.scrub(detail)
        self.tally.records += 1
        if reason is not None:
            source.read += 1
            raw = {k: v for k, v in row.items()}
            self.sink.write_rejects([reject_record(reason, name, loc, detail=detail, raw=raw, row_id=row.get("id") or "")])
            return
        for chosen, rejected, rid in pairs or []:
            source.read += 1
            self._buffer.append((name, make_pair(row, chosen, rejected, self.opts.layout, self.schema, row_id=rid)))
        if len(self._buffer) >= 1024:
            self.flush()

    def flush(self) -> None:
        for name, group in itertools.groupby(self._buffer, key=lambda item: item[0]):
            self.sink.write_rows(name, [pair for _name, pair in group])
        self._buffer = []

    def abort(self) -> None:
        self.sink.abort()


def build_dpo(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str] | None = None,
    options: DpoOptions | None = None,
    *,
    log: Callable[[str], None] | None = None,
    **overrides: Any,
) -> DpoResult:
    """Build DPO pairs from kodolly rows in ``inputs`` (parquet, JSONL or ``datasets`` folders).

    With ``output=None`` the pairs are kept in ``result.report["rows"]`` (API use); with ``dry_run`` nothing
    is sent or written and ``result.estimate`` holds the token and cost estimate.
    """
    opts = options or DpoOptions()
    for k, v in overrides.items():
        if not hasattr(opts, k):
            raise ConfigError(f"unknown build_dpo option {k!r}")
        setattr(opts, k, v)
    opts.check()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    secret = os.environ.get(opts.api_key_env) if opts.mode == "translate" else None
    if secret:
        raw_log = log
        log = lambda msg: raw_log(redact(msg, secret))  # noqa: E731 - every line a server can put words in
    paths_in = [Path(p) for p in inputs]
    for p in paths_in:
        if not p.exists():
            raise ConfigError(f"{p}: no such file or folder")
    reader = Inputs(paths_in, opts.chunk_rows)
    columns = reader.columns()
    if opts.mode != "translate" and opts.dry_run:
        raise ConfigError("--dry-run estimates API cost; ranked and existing pairs make no request")

    prices = PriceTable.load(opts.prices_path)
    if opts.mode == "translate" and opts.dry_run:
        return DpoResult(tally=Tally(), estimate=_estimate(reader, opts, prices))

    schema = layout_schema(opts.layout, columns)
    paths = output_paths(Path(output), opts.output_format, opts.rejects_path) if output is not None else None
    run = _Run(opts, schema, paths, log)  # its sink opens the output set (lock, stale temporaries)
    dpo_info: dict[str, Any] = {
        "mode": "batch" if (opts.mode == "translate" and opts.batch) else opts.mode,
        "model": opts.model if opts.mode == "translate" else None,
        "base_url_host": base_url_host(opts.base_url) if opts.mode == "translate" else None,
        "batch_ids": [], "requests": 0, "cache_hits": 0, "retries": 0,
        "tokens": {"prompt": 0, "completion": 0}, "cost_usd": 0.0, "layout": opts.layout,
    }
    report: dict[str, Any] = {}
    budget_exhausted = False
    try:
        if opts.mode == "translate":
            budget_exhausted = _translate(reader, opts, prices, run, dpo_info, report)
        else:
            for row, loc in reader.rows():
                got = ranked_pairs(row, opts.all_pairs) if opts.mode == "ranked" else existing_pair(row)
                if isinstance(got, str):
                    run.emit(row, loc, None, got)
                else:
                    run.emit(row, loc, got, None)
        run.flush()
    except BaseException:
        run.abort()
        raise
    report.update(dpo_info)

    def manifest_of(outputs: list[dict[str, Any]], rejects_info: dict[str, Any] | None, tally: Tally) -> dict[str, Any]:
        from .. import __version__

        return {
            "manifest_version": 1,
            "kodolly_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "inputs": [_input_description(p) for p in paths_in],
            "converter": {"name": "build-dpo", "options": opts.manifest_options()},
            "filters": [],
            "output": {"format": paths.format, "dolly_only": False, "files": outputs},
            "rejects": rejects_info,
            "counts": tally.as_dict(),
            "dpo": dpo_info,
        }

    done = run.sink.close(manifest_of)  # the one door out: tally check, commit, manifest
    by_reason = run.tally.by_reason
    failed = {r: by_reason[r] for r in FAILURE_REASONS if by_reason.get(r)}
    result = DpoResult(tally=run.tally, report=report, budget_exhausted=budget_exhausted, failed=failed)
    if run.rows is not None:
        result.report["rows"] = run.rows
    result.output, result.rejects, result.manifest, result.manifest_data = done.output, done.rejects, done.manifest, done.manifest_data
    result.report_html = done.report_html
    return result


def _progress_bar(opts: DpoOptions, total: Callable[[], int | None], desc: str):
    show = sys.stderr.isatty() if opts.progress is None else opts.progress
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total(), unit=" rows", desc=desc, dynamic_ncols=True)


def _setup(opts: DpoOptions, prices: PriceTable, stop: threading.Event, log: Callable[[str], None]):
    api_key = _api_key(opts)
    # the HTTP timeout is longer than the client's wait: an answer arriving late is still read and counted
    client = make_client(api_key, opts.base_url, opts.timeout + max(0.0, opts.late_wait))
    translator = Translator(
        client, model=opts.model, system_prompt=opts.system_prompt, temperature=opts.temperature, max_tokens=opts.max_tokens,
        token_param=opts.token_param,
        retry=RetryPolicy(max_retries=opts.max_retries, base_delay=opts.retry_base_delay, max_delay=opts.retry_max_delay,
                          max_retry_after=opts.max_retry_after),
        api_key=os.environ.get(opts.api_key_env) or None, stop_event=stop, timeout=opts.timeout, late_wait=max(0.0, opts.late_wait), notice=log,
        concurrency=opts.concurrency,
    )
    cache = TranslationCache(opts.cache_path or default_cache_path())
    if opts.retry_rejected:
        cache.ignore_rejected_before = time.time()
    signature = request_signature(opts.model, opts.system_prompt, translator.params())
    return api_key, translator, cache, signature


def _translate(reader: Inputs, opts: DpoOptions, prices: PriceTable, run: _Run, info: dict[str, Any], report: dict[str, Any]) -> bool:
    stop = threading.Event()
    api_key, translator, cache, signature = _setup(opts, prices, stop, run.log)
    run.scrub = lambda text: redact(text, translator.secret)
    budget = Budget(opts.max_cost)
    counter = TokenCounter(opts.model)
    engine = Engine(
        translator, cache, signature, prices=prices, budget=budget, limiter=RateLimiter(opts.rpm, opts.tpm),
        counter=counter, concurrency=opts.concurrency, batch_pricing=opts.batch, stop_event=stop, claim_ttl=opts.claim_ttl,
    )
    batch_failures: dict[str, Outcome] = {}
    runner = None
    try:
        if opts.batch:
            from .batch import BatchRunner

            items: dict[str, str] = {}
            for row, _ in reader.rows():
                response = row.get("response") or ""
                if skip_reason(row.get("instruction") or "", response) is None:
                    key = engine.key(response)
                    if key not in items and cache.get(key) is None:
                        items[key] = response
            runner = BatchRunner(
                translator, cache, signature, prices=prices, budget=budget, counter=counter, counters=engine.counters,
                poll_interval=opts.poll_interval, rounds=opts.batch_rounds, max_requests=opts.batch_max_requests, on_progress=run.log, stop_event=stop,
            )
            try:
                batch_failures = runner.run(items)
            except RequestFailed as exc:  # the Batch API itself (upload, create, poll) failed after all retries
                if translator.stats.responses == 0:
                    raise ApiUnreachableError(exc.detail) from None
                raise ApiFatalError(f"the Batch API failed: {exc.detail}") from None
            # every text has its answer in the cache or a failure now: the loop below makes no request

        def lookup(text: str) -> Outcome | Future:
            if not opts.batch:
                return engine.lookup(text)
            key = engine.key(text)
            cached = cache.get(key)
            if cached is not None:
                return Outcome(cached.translation, cached.reason, "cached" if cached.reason else "")
            return batch_failures.get(key) or Outcome(None, "dpo_batch_failed", "no result")

        bar = _progress_bar(opts, reader.count, "translating")
        try:
            _translate_loop(reader, opts, run, engine, lookup, bar)
        finally:
            if bar is not None:
                bar.close()
    except ApiFatalError as exc:
        engine.shutdown(cancel=True)
        kept = len(cache)
        cache.close()
        what = f"cannot reach the API at {base_url_host(opts.base_url)} ({exc})" if isinstance(exc, ApiUnreachableError) else str(exc)
        raise type(exc)(
            redact(f"{what} — stopped; {kept} translations are kept in the cache {cache.path}; no output was written", api_key)
        ) from None
    except BaseException:
        engine.shutdown(cancel=True)
        cache.close()
        raise
    engine.shutdown()
    cache.close()
    c: Counters = engine.counters
    info.update(
        batch_ids=list(runner.batch_ids) if runner else [],
        requests=translator.stats.requests + (runner.submitted if runner else 0),
        cache_hits=c.cache_hits,
        retries=translator.stats.retries,
        tokens={"prompt": c.prompt_tokens, "completion": c.completion_tokens},
        cost_usd=round(c.cost_usd, 8),
        late_answers=translator.stats.late_answers,
        unreported_attempts=c.unreported_attempts,
        cost_unreported_max_usd=round(c.cost_unreported_max_usd, 8),
        from_other_runs=c.from_other_runs,
        retry_after_clamped=translator.stats.retry_after_clamped,
    )
    report.update(
        deduped=c.deduped, check_retries=c.check_retries, retries_by_kind=dict(translator.stats.by_kind),
        token_count_method=counter.method, price=prices.as_dict().get(opts.model),
    )
    return budget.exhausted


def _translate_loop(reader: Inputs, opts: DpoOptions, run: _Run, engine: Engine, lookup, bar) -> None:
    window: deque = deque()

    def emit_head() -> None:
        row, loc, got, text = window.popleft()
        if isinstance(got, Future):
            while not got.done():
                wait([got], timeout=0.1)
            got = got.result()  # raises ApiFatalError if this text's request was refused
            engine.settle(text, got)
        if got.reason is not None:
            run.emit(row, loc, None, got.reason, got.detail)
        else:
            run.emit(row, loc, [(text, got.translation, row.get("id") or "")], None)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"${engine.counters.cost_usd:.4f}", refresh=False)

    for row, loc in reader.rows():
        response = row.get("response") or ""
        reason = skip_reason(row.get("instruction") or "", response)
        got: Any = Outcome(None, reason) if reason else lookup(response)
        window.append((row, loc, got, response))
        if engine.stop.is_set():
            _raise_fatal(window)
        while window and (len(window) > opts.window or not isinstance(window[0][2], Future) or window[0][2].done()):
            emit_head()
    while window:
        emit_head()


def _raise_fatal(window: deque) -> None:
    for _, _, got, _ in window:
        if isinstance(got, Future) and got.done() and isinstance(got.exception(), ApiFatalError):
            raise got.exception()


def _estimate(reader: Inputs, opts: DpoOptions, prices: PriceTable) -> dict[str, Any]:
    """Dry run: tokens and cost of what a real run would send (cached and skipped texts cost nothing)."""
    counter = TokenCounter(opts.model)
    signature = request_signature(opts.model, opts.system_prompt, request_params(opts.model, opts.temperature, opts.max_tokens, opts.token_param))
    cache_file = Path(opts.cache_path) if opts.cache_path else default_cache_path()
    cache = TranslationCache(cache_file) if cache_file.exists() else None
    if cache is not None and opts.retry_rejected:
        cache.ignore_rejected_before = time.time()
    from .cache import cache_key

    seen: set[str] = set()
    skipped: dict[str, int] = {}
    rows = cached = duplicates = prompt = completion = 0
    for row, _ in reader.rows():
        rows += 1
        response = row.get("response") or ""
        reason = skip_reason(row.get("instruction") or "", response)
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        key = cache_key(signature, response)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        if cache is not None and cache.get(key) is not None:
            cached += 1
            continue
        prompt += counter.chat_prompt(opts.system_prompt, response)
        completion += counter.completion_estimate(response, opts.max_tokens)
    if cache is not None:
        cache.close()
    price = prices.price(opts.model)
    return {
        "rows": rows,
        "skipped": skipped,
        "duplicates": duplicates,
        "cached": cached,
        "requests": len(seen) - cached,
        "prompt_tokens": prompt,
        "completion_tokens_estimate": completion,
        "token_count_method": counter.method,
        "model": opts.model,
        "batch": opts.batch,
        "price_per_1m": {"input": price.input, "output": price.output} if price else None,
        "cost_usd": round(prices.cost(opts.model, prompt, completion, batch=opts.batch), 6),
    }
