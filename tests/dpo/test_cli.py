"""``kodolly build-dpo`` as a user runs it: --help, a SIGKILL mid-run and a restart, 401, dry run, pairs,
and the API key in no file and no output."""

import json
import signal
import subprocess
import sys
import time

import orjson
import pyarrow.parquet as pq
from click.testing import CliRunner

from kodolly.cli import cli
from kodolly.dpo.cache import TranslationCache

from .conftest import FIXTURES, KEY, cli_env, korean_texts, run_cli, write_rows
from .fakeopenai import romanize


def test_help():
    result = CliRunner().invoke(cli, ["build-dpo", "--help"])
    assert result.exit_code == 0
    for opt in ("--layout", "--pairs-from", "--batch", "--max-cost", "--dry-run", "--base-url", "--prices", "--cache", "--token-param", "--retry-rejected"):
        assert opt in result.output


def _cache_keys(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT key FROM translations WHERE translation IS NOT NULL")}


def test_sigkill_midway_then_restart_pays_nothing_twice(tmp_path, server):
    server.latency = 0.03
    texts = korean_texts(60)
    src = write_rows(tmp_path / "in.jsonl", texts)
    cache = tmp_path / "cache.sqlite"
    args = ["build-dpo", str(src), "-o", str(tmp_path / "out.parquet"), "--base-url", server.base_url,
            "--cache", str(cache), "--concurrency", "4", "--retry-base-delay", "0.01", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "kodolly", *args], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while server.served < 20 and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "out.manifest.json").exists()
    first_counts = dict(server.chat_counts)
    assert 20 <= sum(first_counts.values()) < 60
    db = TranslationCache(cache)
    cached_before = len(db)
    db.close()
    assert cached_before >= 16  # served answers reached the cache (at most the in-flight ones were lost)

    done = run_cli(args, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(60)]
    assert [r["rejected"] for r in rows] == [romanize(t) for t in texts]
    # texts answered and cached before the kill were not asked again; only in-flight ones (<= concurrency) were
    asked_twice = [t for t, n in server.chat_counts.items() if n > 1]
    assert len(asked_twice) <= 4
    assert sum(server.chat_counts.values()) <= 60 + 4
    assert f"cache hits {cached_before}," in done.stdout
    assert f"requests {60 - cached_before}," in done.stdout


def test_401_exits_with_one_clear_line_and_no_key(tmp_path, server):
    texts = korean_texts(5)
    for t in texts:
        server.fault(t, "401")
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = run_cli(["build-dpo", str(src), "-o", str(tmp_path / "out.parquet"), "--base-url", server.base_url,
                   "--cache", str(tmp_path / "c.sqlite"), "--no-progress"], timeout=60)
    assert res.returncode == 4
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kodolly: error: the API refused the request (HTTP 401)")
    assert KEY not in res.stderr + res.stdout
    assert not (tmp_path / "out.parquet").exists()


def test_key_never_written_or_printed(tmp_path, server):
    server.fault("제주", "429", "refusal", "refusal")  # a retry and a rejected translation in the logs
    out = tmp_path / "o"
    out.mkdir()
    res = run_cli(["build-dpo", str(FIXTURES / "rows.jsonl"), "-o", str(out / "dpo.parquet"), "--base-url", server.base_url,
                   "--cache", str(out / "cache.sqlite"), "--retry-base-delay", "0.01", "--progress"], timeout=60)
    assert res.returncode == 0, res.stderr
    res_batch = run_cli(["build-dpo", str(FIXTURES / "rows.jsonl"), "-o", str(out / "b.jsonl"), "--base-url", server.base_url,
                         "--cache", str(out / "cache2.sqlite"), "--batch", "--poll-interval", "0.05", "--progress"], timeout=60)
    assert res_batch.returncode == 0, res_batch.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"dpo.parquet", "dpo.rejects.jsonl", "dpo.manifest.json", "cache.sqlite", "b.jsonl"}
    for p in files:
        assert KEY.encode() not in p.read_bytes(), p
    for text in (res.stdout, res.stderr, res_batch.stdout, res_batch.stderr):
        assert KEY not in text
    assert "dpo_translation_refusal" in res.stdout  # the tally was printed


def test_dry_run_cli(tmp_path, server):
    res = run_cli(["build-dpo", str(FIXTURES / "rows.jsonl"), "--dry-run", "--base-url", server.base_url,
                   "--cache", str(tmp_path / "c.sqlite")], timeout=60)
    assert res.returncode == 0, res.stderr
    assert "dry run: 10 rows, 6 requests to send (0 cached, 1 duplicates, 3 skipped)" in res.stdout
    assert "estimated cost: $" in res.stdout and "gpt-4o-mini, $0.15/$0.6 per 1M in/out" in res.stdout
    assert sum(server.paths.values()) == 0


def test_max_cost_exit_code(tmp_path, server):
    src = write_rows(tmp_path / "in.jsonl", korean_texts(10))
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"gpt-4o-mini": {"input": 1000, "output": 1000}}))
    res = run_cli(["build-dpo", str(src), "-o", str(tmp_path / "o.jsonl"), "--base-url", server.base_url, "--cache",
                   str(tmp_path / "c.sqlite"), "--prices", str(prices), "--max-cost", "0.2", "--max-tokens", "40", "--concurrency", "1"], timeout=60)
    assert res.returncode == 5
    assert "budget $0.2 reached" in res.stderr
    assert (tmp_path / "o.jsonl").exists()
    m = json.loads((tmp_path / "o.manifest.json").read_text())
    assert m["dpo"]["cost_usd"] <= 0.2 and m["counts"]["by_reason"]["dpo_budget_exceeded"] > 0


def test_ranked_and_existing_pairs_cli(tmp_path):
    res = run_cli(["build-dpo", str(FIXTURES / "pairs.jsonl"), "-o", str(tmp_path / "r.jsonl"), "--pairs-from", "ranked",
                   "--layout", "trl"], timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [orjson.loads(x) for x in (tmp_path / "r.jsonl").read_bytes().splitlines()]
    assert rows == [{"prompt": "질문 0", "chosen": "가장 좋은 답", "rejected": "나쁜 답", "source": "aihub", "id": "p0"}]
    m = json.loads((tmp_path / "r.manifest.json").read_text())
    assert m["dpo"]["mode"] == "ranked" and m["dpo"]["model"] is None and m["dpo"]["requests"] == 0
    assert m["counts"]["by_reason"] == {"dpo_no_ranked_answers": 3, "dpo_rejected_equals_chosen": 1}
    res = run_cli(["build-dpo", str(FIXTURES / "pairs.jsonl"), "-o", str(tmp_path / "e.parquet"), "--pairs-from", "existing"], timeout=60)
    assert res.returncode == 0, res.stderr
    rows = pq.read_table(tmp_path / "e.parquet").to_pylist()
    assert [(r["id"], r["response"], r["rejected"]) for r in rows] == [("p2", "좋은 답", "나쁜 답입니다")]
