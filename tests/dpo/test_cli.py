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
    for opt in ("--layout", "--pairs-from", "--batch", "--max-cost", "--dry-run", "--base-url", "--prices", "--cache", "--token-param", "--retry-rejected", "--max-retry-after", "--late-wait"):
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


# issue 18: exit codes, shared caches, Retry-After, budget, secrets -------------------------------------


def _invoke(args):
    """build-dpo in this process (faster than a subprocess; stdout and stderr kept apart)."""
    return CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": KEY}, catch_exceptions=False)


def _base(tmp_path, server, src, out="out.jsonl", cache="c.sqlite"):
    return ["build-dpo", str(src), "-o", str(tmp_path / out), "--base-url", server.base_url, "--cache", str(tmp_path / cache),
            "--retry-base-delay", "0.01", "--no-progress"]


def test_unreachable_api_exits_4_and_writes_nothing(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    src = write_rows(tmp_path / "in.jsonl", korean_texts(8))
    res = run_cli(["build-dpo", str(src), "-o", str(tmp_path / "out.parquet"), "--base-url", f"http://127.0.0.1:{port}/v1",
                   "--cache", str(tmp_path / "c.sqlite"), "--max-retries", "1", "--retry-base-delay", "0.01", "--no-progress"], timeout=60)
    assert res.returncode == 4
    assert res.stderr.splitlines() == [
        f"kodolly: error: cannot reach the API at 127.0.0.1:{port} (gave up after 2 attempts; last: connection: Connection error.) — "
        f"stopped; 0 translations are kept in the cache {tmp_path / 'c.sqlite'}; no output was written"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(("c.sqlite", "kodolly-cache"))) == ["in.jsonl"]


def test_outage_rows_without_answer_exit_6_then_a_rerun_finishes_only_them(tmp_path, server):
    texts = korean_texts(10)
    src = write_rows(tmp_path / "in.jsonl", texts)
    server.fault_all("503", "503", "503", "503")  # an outage: the first 4 requests, whatever their text
    args = _base(tmp_path, server, src) + ["--concurrency", "1", "--max-retries", "1"]
    res = _invoke(args)
    assert res.exit_code == 6
    assert res.stderr.splitlines() == [
        f"kodolly: error: 2 of 10 rows got no translation from the API (dpo_api_error 2); they are in {tmp_path / 'out.rejects.jsonl'}. "
        "Run again to finish them: translated texts come from the cache."]
    rows = [orjson.loads(x) for x in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(2, 10)]
    rejects = [orjson.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_bytes().splitlines()]
    assert [(r["id"], r["reason"], r["detail"]) for r in rejects] == [
        (f"t{i}", "dpo_api_error", "gave up after 2 attempts; last: http_503: status 503") for i in (0, 1)]
    assert sum(server.chat_counts.values()) == 12
    again = _invoke(args)
    assert again.exit_code == 0, again.stderr
    assert "requests 2, cache hits 8," in again.stdout
    assert sum(server.chat_counts.values()) == 14
    rows = [orjson.loads(x) for x in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert [r["rejected"] for r in rows] == [romanize(t) for t in texts]


def test_batch_failed_rows_exit_6(tmp_path, server):
    src = write_rows(tmp_path / "in.jsonl", korean_texts(4))
    server.batch_plan = ["failed", "failed"]
    res = _invoke(_base(tmp_path, server, src) + ["--batch", "--poll-interval", "0.05", "--batch-rounds", "2"])
    assert res.exit_code == 6
    assert res.stderr.splitlines()[-1] == (
        f"kodolly: error: 4 of 4 rows got no translation from the API (dpo_batch_failed 4); they are in {tmp_path / 'out.rejects.jsonl'}. "
        "Run again to finish them: translated texts come from the cache.")
    assert (tmp_path / "out.jsonl").read_bytes() == b""


def test_two_runs_sharing_a_cache_pay_once(tmp_path, server):
    import psutil

    server.latency = 0.05
    server.gate.clear()  # answers wait until both runs are up
    texts = korean_texts(40)
    src = write_rows(tmp_path / "in.jsonl", texts)
    shared = tmp_path / "shared.sqlite"
    procs = []
    for name in ("a", "b"):
        args = _base(tmp_path, server, src, out=f"{name}.jsonl", cache="shared.sqlite") + ["--concurrency", "2"]
        procs.append(subprocess.Popen([sys.executable, "-m", "kodolly", *args], env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        if name == "a":  # b starts once a's first requests (and their claims) are in the server
            deadline = time.time() + 60
            while sum(server.chat_counts.values()) < 2 and time.time() < deadline:
                time.sleep(0.01)
    deadline = time.time() + 60
    while time.time() < deadline and not any(f.path == str(shared) for f in psutil.Process(procs[1].pid).open_files()):
        time.sleep(0.05)
    time.sleep(5.0)  # b reads its first rows and finds them claimed by a (generous: the machine may be loaded)
    server.gate.set()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert sum(server.chat_counts.values()) == 40 and set(server.chat_counts.values()) == {1}
    ma, mb = (json.loads((tmp_path / f"{n}.manifest.json").read_text())["dpo"] for n in ("a", "b"))
    assert ma["requests"] + mb["requests"] == 40
    assert mb["from_other_runs"] >= 1, (ma, mb)  # b waited for a's answers instead of paying again
    assert ma["cache_hits"] + ma["from_other_runs"] + ma["requests"] == 40 == mb["cache_hits"] + mb["from_other_runs"] + mb["requests"]
    for n in ("a", "b"):
        rows = [orjson.loads(x) for x in (tmp_path / f"{n}.jsonl").read_bytes().splitlines()]
        assert [r["rejected"] for r in rows] == [romanize(t) for t in texts]
    assert TranslationCache(shared).claims() == []


def test_retry_after_above_the_cap_is_clamped_with_one_notice(tmp_path, server):
    texts = korean_texts(3)
    server.retry_after = "100000"
    server.fault(texts[0], "429", "429")
    server.fault(texts[2], "429")
    src = write_rows(tmp_path / "in.jsonl", texts)
    start = time.time()
    res = _invoke(_base(tmp_path, server, src) + ["--max-retry-after", "0.2", "--concurrency", "1"])
    assert res.exit_code == 0, res.stderr
    assert time.time() - start < 30
    assert res.stderr.splitlines() == [
        "kodolly: notice: the server asked to wait 100000 s before retrying (Retry-After); waiting 0.2 s instead "
        "(--max-retry-after); later ones are counted in the manifest"]
    m = json.loads((tmp_path / "out.manifest.json").read_text())
    assert m["dpo"]["retry_after_clamped"] == 3 and m["dpo"]["requests"] == 6 and sum(server.chat_counts.values()) == 6


def test_max_cost_holds_when_every_answer_uses_its_whole_token_limit(tmp_path, server):
    """The issue's case: --max-cost 0.02 spent $0.0259 with answers as long as max_tokens."""
    from kodolly.dpo.client import DEFAULT_SYSTEM_PROMPT
    from kodolly.dpo.tokens import TokenCounter

    server.full_answers = True
    counter = TokenCounter("gpt-4o-mini")
    server.count_prompt = counter.chat_prompt
    texts = korean_texts(40)
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = _invoke(_base(tmp_path, server, src) + ["--max-cost", "0.02", "--concurrency", "4"])
    assert res.exit_code == 5
    assert res.stderr.splitlines() == ["kodolly: error: budget $0.02 reached; rows past it are rejected as dpo_budget_exceeded. "
                                       "Run again with a higher --max-cost: paid translations come from the cache."]
    billed = (server.billed["prompt_tokens"] * 0.15 + server.billed["completion_tokens"] * 0.60) / 1e6
    worst = max((counter.chat_prompt(DEFAULT_SYSTEM_PROMPT, t) * 0.15 + 2048 * 0.60) / 1e6 for t in texts)
    assert 0.02 - worst < billed <= 0.02
    m = json.loads((tmp_path / "out.manifest.json").read_text())
    assert m["dpo"]["cost_usd"] == round(billed, 8)
    assert m["counts"]["written"] == server.billed["answers"] == sum(server.chat_counts.values())


def _key_forms():
    from urllib.parse import quote

    half = len(KEY) // 2
    return [KEY, KEY.replace("-", "%2D"), KEY.replace("-", "%2d"), quote(KEY, safe=""), KEY[:half], KEY[half:]]


def test_a_key_echoed_url_encoded_never_reaches_stderr(tmp_path, server):
    texts = korean_texts(2)
    server.fault(texts[0], "401-encoded")
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = run_cli(_base(tmp_path, server, src) + ["--concurrency", "1"], timeout=60)
    assert res.returncode == 4
    assert res.stderr.splitlines() == [
        "kodolly: error: the API refused the request (HTTP 401): Incorrect API key provided: ***. — stopped; "
        f"0 translations are kept in the cache {tmp_path / 'c.sqlite'}; no output was written"]
    for form in _key_forms():
        assert form not in res.stderr + res.stdout


def test_a_key_echoed_split_or_encoded_never_reaches_the_rejects(tmp_path, server):
    texts = korean_texts(3)
    server.fault(texts[0], "500-split", "500-split")
    server.fault(texts[1], "500-encoded", "500-encoded")
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = run_cli(_base(tmp_path, server, src) + ["--max-retries", "1"], timeout=60)
    assert res.returncode == 6
    rejects = [orjson.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_bytes().splitlines()]
    assert [(r["id"], r["reason"], r["detail"]) for r in rejects] == [
        ("t0", "dpo_api_error", "gave up after 2 attempts; last: http_500: bad key ***"),
        ("t1", "dpo_api_error", "gave up after 2 attempts; last: http_500: Incorrect API key provided: ***."),
    ]
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name.startswith("out"))
    for form in _key_forms():
        assert form.encode() not in written and form not in res.stderr + res.stdout
