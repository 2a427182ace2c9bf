"""``kodolly build-dpo``: DPO pairs from kodolly rows (translation through the OpenAI API, or no API)."""

from __future__ import annotations

import json

import click

from ..io.writers import FORMATS
from .run_options import html_report_options

_LAYOUTS = ("dolly", "trl", "trl-conversational")


@click.command("build-dpo")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(), help="Output: x.parquet, x.jsonl, or a folder (datasets). Not needed with --dry-run.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), help="Output format (default: from the output name).")
@click.option("--layout", type=click.Choice(_LAYOUTS), default="dolly", show_default=True, help="Dolly fields + rejected, or trl prompt/chosen/rejected (plain or conversational).")
@click.option("--pairs-from", "mode", type=click.Choice(["translate", "ranked", "existing"]), default="translate", show_default=True,
              help="translate: rejected = English translation (API); ranked: best vs worst ranked answer; existing: meta.rejected / a rejected column.")
@click.option("--all-pairs", is_flag=True, help="With --pairs-from ranked: every ordered pair of ranked answers, not only best vs worst.")
@click.option("--model", default="gpt-4o-mini", show_default=True, help="Chat model used for the translation.")
@click.option("--system-prompt", default=None, help="System prompt of the translation request (default: a plain translate-to-English prompt).")
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--max-tokens", type=int, default=2048, show_default=True, help="Token limit of each answer.")
@click.option("--token-param", type=click.Choice(["auto", "max_tokens", "max_completion_tokens"]), default="auto", show_default=True,
              help="How the limit is sent: auto = max_completion_tokens for OpenAI reasoning models (o1/o3/o4/gpt-5), max_tokens otherwise.")
@click.option("--base-url", default=None, help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (vLLM) or http://localhost:11434/v1 (Ollama).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds before a request is given up and retried.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Requests in flight at most.")
@click.option("--rpm", type=float, default=None, help="Client-side requests-per-minute limit (default: none).")
@click.option("--tpm", type=float, default=None, help="Client-side tokens-per-minute limit (default: none).")
@click.option("--max-retries", type=int, default=6, show_default=True, help="Retries of one request on 429/5xx/timeouts/dropped connections.")
@click.option("--retry-base-delay", type=float, default=0.5, show_default=True, help="First backoff delay in seconds (doubles each retry, with jitter).")
@click.option("--max-retry-after", type=float, default=120.0, show_default=True,
              help="Longest wait in seconds a server's Retry-After gets; a longer one is clamped to this, with a notice.")
@click.option("--late-wait", type=float, default=30.0, show_default=True,
              help="Seconds past --timeout an abandoned request may still answer: its usage is counted in the cost.")
@click.option("--cache", "cache_path", type=click.Path(), default=None, help="Translation cache (SQLite; default ~/.cache/kodolly/dpo.sqlite).")
@click.option("--retry-rejected", is_flag=True, help="Ask again for texts whose translation an earlier run rejected (refusal, echo, ...) and cached.")
@click.option("--batch", is_flag=True, help="Use the OpenAI Batch API (half price, results within 24 h); resumable.")
@click.option("--poll-interval", type=float, default=30.0, show_default=True, help="Seconds between batch status checks.")
@click.option("--batch-rounds", type=int, default=3, show_default=True, help="Batches at most per run (failed items are resubmitted).")
@click.option("--batch-max-requests", type=int, default=50_000, show_default=True, help="Requests per batch at most (the API's limit is 50,000).")
@click.option("--prices", "prices_path", type=click.Path(exists=True), default=None, help="Price table (TOML/JSON, USD per 1M tokens) overriding the built-in one.")
@click.option("--dry-run", is_flag=True, help="Estimate tokens and cost; send nothing, write nothing.")
@click.option("--max-cost", type=float, default=None, help="Budget in USD: no request is sent that could take the run past it.")
@click.option("--rejects", "rejects_path", type=click.Path(), help="Rejects file (default: OUTPUT.rejects.jsonl).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal only).")
@html_report_options
def build_dpo_command(inputs, output, output_format, layout, mode, all_pairs, model, system_prompt, temperature, max_tokens, token_param,
                      base_url, timeout, concurrency, rpm, tpm, max_retries, retry_base_delay, max_retry_after, late_wait, cache_path, retry_rejected, batch, poll_interval,
                      batch_rounds, batch_max_requests, prices_path, dry_run, max_cost, rejects_path, progress, html_report, tokenizer) -> None:
    """Build DPO pairs from kodolly rows in INPUTS (parquet, JSONL or datasets folders).

    By default each Korean response is `chosen` and its English translation (OpenAI API; the key from
    OPENAI_API_KEY) is `rejected`. Translations are cached, so a run that stops can be started again and
    pays for nothing twice.
    """
    from ..dpo import DpoOptions, build_dpo
    from ..dpo.client import DEFAULT_SYSTEM_PROMPT
    from ..errors import ConfigError

    if output is None and not dry_run:
        raise ConfigError("build-dpo needs -o/--output (or --dry-run)")
    opts = DpoOptions(
        mode=mode, batch=batch, model=model, system_prompt=system_prompt if system_prompt is not None else DEFAULT_SYSTEM_PROMPT,
        temperature=temperature, max_tokens=max_tokens or None, token_param=token_param, base_url=base_url, timeout=timeout, concurrency=concurrency,
        rpm=rpm, tpm=tpm, max_retries=max_retries, retry_base_delay=retry_base_delay, max_retry_after=max_retry_after, late_wait=late_wait,
        cache_path=cache_path, retry_rejected=retry_rejected,
        poll_interval=poll_interval, batch_rounds=batch_rounds, batch_max_requests=batch_max_requests, prices_path=prices_path, dry_run=dry_run, max_cost=max_cost,
        layout=layout, all_pairs=all_pairs, output_format=output_format, rejects_path=rejects_path, progress=progress,
        html_report=html_report and not dry_run, tokenizer=tokenizer,
    )
    result = build_dpo(list(inputs), None if dry_run else output, opts, log=lambda msg: click.echo(msg, err=True))
    if result.estimate is not None:
        e = result.estimate
        click.echo(f"dry run: {e['rows']} rows, {e['requests']} requests to send ({e['cached']} cached, {e['duplicates']} duplicates, "
                   f"{sum(e['skipped'].values())} skipped)")
        click.echo(f"tokens: ~{e['prompt_tokens']} prompt + ~{e['completion_tokens_estimate']} completion ({e['token_count_method']})")
        price = e["price_per_1m"]
        price_text = f"${price['input']}/${price['output']} per 1M in/out" if price else "no price known for this model"
        click.echo(f"estimated cost: ${e['cost_usd']:.4f} ({e['model']}, {price_text}{', batch -50%' if e['batch'] else ''})")
        if e["skipped"]:
            click.echo("skipped: " + json.dumps(e["skipped"]))
        return
    click.echo(result.tally.format())
    r = result.report
    if mode == "translate":
        click.echo(
            f"\nrequests {r['requests']}, cache hits {r['cache_hits']}, retries {r['retries']}, "
            f"tokens {r['tokens']['prompt']} prompt + {r['tokens']['completion']} completion, cost ${r['cost_usd']:.4f}"
        )
        if r.get("late_answers") or r.get("unreported_attempts"):
            click.echo(f"late answers counted {r['late_answers']}; attempts never answered {r['unreported_attempts']} "
                       f"(possibly billed, up to ${r['cost_unreported_max_usd']:.4f})")
        if r.get("from_other_runs"):
            click.echo(f"answers reused from another run on the same cache {r['from_other_runs']}")
        if r.get("batch_ids"):
            click.echo("batches: " + ", ".join(r["batch_ids"]))
    click.echo(f"\nwrote {result.output} ({result.tally.written} rows)")
    click.echo(f"rejects {result.rejects} ({result.tally.rejected})")
    click.echo(f"manifest {result.manifest}")
    if result.report_html is not None:
        click.echo(f"page {result.report_html}")
    if result.api_failures:
        counts = ", ".join(f"{reason} {n}" for reason, n in result.failed.items())
        budget = "; the budget was reached too" if result.budget_exhausted else ""
        click.echo(f"kodolly: error: {result.api_failures} of {result.tally.records} rows got no translation from the API ({counts}){budget}; "
                   f"they are in {result.rejects}. Run again to finish them: translated texts come from the cache.", err=True)
        raise click.exceptions.Exit(6)
    if result.budget_exhausted:
        click.echo(f"kodolly: error: budget ${max_cost} reached; rows past it are rejected as dpo_budget_exceeded. "
                   "Run again with a higher --max-cost: paid translations come from the cache.", err=True)
        raise click.exceptions.Exit(5)


COMMANDS = [build_dpo_command]
