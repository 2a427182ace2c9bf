"""The engine against the fake server: worst-case budget, usage of every answer (late ones too), claims
shared by runs on one cache (stale claims expire), an unreachable API."""

import socket
import subprocess
import sys
import threading
import time

import orjson
import pytest

from kodolly.dpo import build_dpo
from kodolly.dpo.cache import TranslationCache, cache_key, request_signature
from kodolly.dpo.client import DEFAULT_SYSTEM_PROMPT, ApiUnreachableError, request_params
from kodolly.dpo.pricing import PriceTable
from kodolly.dpo.tokens import TokenCounter

from .conftest import korean_texts, write_rows
from .fakeopenai import romanize

MODEL = "gpt-4o-mini"


def read_jsonl(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _prices(tmp_path, input=1000.0, output=1000.0):
    p = tmp_path / "prices.toml"
    p.write_text(f"[{MODEL}]\ninput = {input}\noutput = {output}\n")
    return str(p)


def _worst(text, max_tokens, per_token=0.001):
    return (TokenCounter(MODEL).chat_prompt(DEFAULT_SYSTEM_PROMPT, text) + max_tokens) * per_token


# --max-cost ----------------------------------------------------------------------------------


def test_max_cost_reserves_the_worst_case_and_never_overshoots(tmp_path, server, fast):
    """Every answer uses its whole max_tokens: the run stops exactly where the next request could overshoot."""
    server.full_answers = True
    server.count_prompt = TokenCounter(MODEL).chat_prompt  # the server counts the prompt like the API
    texts = korean_texts(12)
    src = write_rows(tmp_path / "in.jsonl", texts)
    worst = [_worst(t, 50) for t in texts]
    max_cost = sum(worst[:7]) + worst[7] / 2  # the 8th request could pass the cap
    res = build_dpo([src], tmp_path / "out.jsonl", prices_path=_prices(tmp_path), max_cost=max_cost, max_tokens=50,
                    concurrency=1, **fast)
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(7)]
    assert [(r["id"], r["reason"]) for r in read_jsonl(tmp_path / "out.rejects.jsonl")] == [
        (f"t{i}", "dpo_budget_exceeded") for i in range(7, 12)]
    assert sum(server.chat_counts.values()) == res.report["requests"] == 7
    billed = (server.billed["prompt_tokens"] + server.billed["completion_tokens"]) * 0.001
    assert res.report["cost_usd"] == pytest.approx(billed) == pytest.approx(sum(worst[:7]))
    assert billed <= max_cost and res.budget_exhausted


def test_max_cost_with_concurrency_waits_for_reservations_in_flight(tmp_path, server, fast):
    server.full_answers = True
    server.count_prompt = TokenCounter(MODEL).chat_prompt
    server.latency = 0.02
    texts = korean_texts(30)
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", prices_path=_prices(tmp_path), max_cost=0.8, max_tokens=50, concurrency=4, **fast)
    billed = (server.billed["prompt_tokens"] + server.billed["completion_tokens"]) * 0.001
    sent = sum(server.chat_counts.values())
    assert billed <= 0.8 and res.report["cost_usd"] == pytest.approx(billed)
    assert billed + max(_worst(t, 50) for t in texts) > 0.8  # it did not stop early either
    assert res.tally.written == sent and res.tally.by_reason == {"dpo_budget_exceeded": 30 - sent}


# every answer counted -------------------------------------------------------------------------


def test_an_answer_the_client_stopped_waiting_for_is_counted_when_it_arrives(tmp_path, server, fast):
    texts = korean_texts(4)
    server.slow_seconds = 0.6
    server.fault(texts[1], "slow")
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", **{**fast, "timeout": 0.2, "late_wait": 5.0})
    assert [r["rejected"] for r in read_jsonl(tmp_path / "out.jsonl")] == [romanize(t) for t in texts]
    assert server.chat_counts[texts[1]] == 2 and res.report["requests"] == 5
    assert server.billed["answers"] == 5  # the abandoned attempt was completed (and billed) too
    assert res.report["late_answers"] == 1 and res.report["unreported_attempts"] == 0
    assert res.report["tokens"] == {"prompt": server.billed["prompt_tokens"], "completion": server.billed["completion_tokens"]}
    assert res.report["retries_by_kind"] == {"timeout": 1}


def test_an_answer_that_never_reaches_the_client_is_counted_as_possibly_spent(tmp_path, server, fast):
    texts = korean_texts(4)
    server.slow_seconds = 1.2
    server.fault(texts[1], "slow")
    src = write_rows(tmp_path / "in.jsonl", texts)
    prices = _prices(tmp_path)
    res = build_dpo([src], tmp_path / "out.jsonl", prices_path=prices, max_tokens=50,
                    **{**fast, "timeout": 0.2, "late_wait": 0.1})
    assert res.tally.written == 4 and res.report["requests"] == 5
    assert res.report["late_answers"] == 0 and res.report["unreported_attempts"] == 1
    assert res.report["cost_unreported_max_usd"] == pytest.approx(_worst(texts[1], 50))
    deadline = time.time() + 10
    while server.billed["answers"] < 5 and time.time() < deadline:  # the server finishes it after the client left
        time.sleep(0.05)
    billed = (server.billed["prompt_tokens"] + server.billed["completion_tokens"]) * 0.001
    assert res.report["cost_usd"] < billed <= res.report["cost_usd"] + res.report["cost_unreported_max_usd"]


def test_usage_reported_by_an_error_response_is_counted(tmp_path, server, fast, monkeypatch):
    texts = korean_texts(2)
    server.fault(texts[0], "500")
    src = write_rows(tmp_path / "in.jsonl", texts)
    real = server.httpd.RequestHandlerClass._json

    def with_usage(self, status, data, headers=None):
        if status == 500:
            data = {**data, "usage": {"prompt_tokens": 7, "completion_tokens": 3}}
        return real(self, status, data, headers)

    monkeypatch.setattr(server.httpd.RequestHandlerClass, "_json", with_usage)
    res = build_dpo([src], tmp_path / "out.jsonl", **fast)
    assert res.tally.written == 2
    assert res.report["tokens"] == {"prompt": server.billed["prompt_tokens"] + 7, "completion": server.billed["completion_tokens"] + 3}


# unreachable ------------------------------------------------------------------------------------


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("batch", [False, True])
def test_unreachable_api_stops_and_writes_nothing(tmp_path, fast, batch):
    src = write_rows(tmp_path / "in.jsonl", korean_texts(20))
    port = _closed_port()
    with pytest.raises(ApiUnreachableError) as info:
        build_dpo([src], tmp_path / "out.parquet", batch=batch, **{**fast, "base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 1})
    assert str(info.value) == (
        f"cannot reach the API at 127.0.0.1:{port} (gave up after 2 attempts; last: connection: Connection error.) — stopped; "
        f"0 translations are kept in the cache {tmp_path / 'cache.sqlite'}; no output was written")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(("cache.sqlite", "kodolly-cache"))) == ["in.jsonl"]


# claims: runs sharing one cache pay once --------------------------------------------------------


def _signature(max_tokens=2048):
    return request_signature(MODEL, DEFAULT_SYSTEM_PROMPT, request_params(MODEL, 0.0, max_tokens))


def _claim_as(cache_path, text, owner, pid, heartbeat):
    db = TranslationCache(cache_path)
    with db._conn:
        db._conn.execute("INSERT INTO claims VALUES (?, ?, ?, ?, ?)", (cache_key(_signature(), text), owner, socket.gethostname(), pid, heartbeat))
    db.close()


def test_a_claim_of_a_dead_run_expires(tmp_path, server, fast):
    texts = korean_texts(5)
    src = write_rows(tmp_path / "in.jsonl", texts)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _claim_as(fast["cache_path"], texts[2], "other-run", dead.pid, time.time())  # fresh heartbeat, but its pid is gone
    res = build_dpo([src], tmp_path / "out.jsonl", **fast)
    assert res.tally.written == 5 and res.report["requests"] == 5 and server.chat_counts[texts[2]] == 1
    db = TranslationCache(fast["cache_path"])
    assert db.claims() == []  # nothing left behind
    db.close()


def test_a_claim_without_heartbeat_expires_after_its_ttl(tmp_path, server, fast):
    texts = korean_texts(3)
    src = write_rows(tmp_path / "in.jsonl", texts)
    import os

    _claim_as(fast["cache_path"], texts[0], "hung-run", os.getpid(), time.time() - 5)  # alive, but silent for 5 s
    res = build_dpo([src], tmp_path / "out.jsonl", claim_ttl=2.0, **fast)
    assert res.tally.written == 3 and server.chat_counts[texts[0]] == 1 and res.report["from_other_runs"] == 0


def test_a_live_claim_is_waited_for_and_its_answer_reused(tmp_path, server, fast):
    import os

    texts = korean_texts(3)
    src = write_rows(tmp_path / "in.jsonl", texts)
    _claim_as(fast["cache_path"], texts[1], "other-run", os.getpid(), time.time())
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("res", build_dpo([src], tmp_path / "out.jsonl", **fast)))
    t.start()
    time.sleep(0.5)
    assert "res" not in result  # waiting for the other run
    other = TranslationCache(fast["cache_path"])
    other.put(cache_key(_signature(), texts[1]), MODEL, "answer of the other run", None, 5, 5)
    other.close()
    t.join(10)
    res = result["res"]
    assert [r["rejected"] for r in read_jsonl(tmp_path / "out.jsonl")] == [romanize(texts[0]), "answer of the other run", romanize(texts[2])]
    assert texts[1] not in server.chat_counts and res.report["requests"] == 2 and res.report["from_other_runs"] == 1


def test_a_translation_carrying_the_key_is_rejected_and_scrubbed(tmp_path, server, fast, env_key):
    texts = korean_texts(3)
    server.fault(texts[1], "leak-key", "leak-key")
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", **fast)
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["t0", "t2"]
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert [(r["id"], r["reason"], r["detail"]) for r in rejects] == [("t1", "dpo_translation_has_key", f"{romanize(texts[1])} (key ***)")]
    assert server.chat_counts[texts[1]] == 2 and res.report["check_retries"] == 1
    for p in tmp_path.iterdir():
        if p.is_file():
            assert env_key.replace("-", "%2D").encode() not in p.read_bytes() and env_key.encode() not in p.read_bytes()


def test_max_cost_counts_an_attempt_that_never_answered_as_spent(tmp_path, server, fast):
    server.full_answers = True
    server.count_prompt = TokenCounter(MODEL).chat_prompt
    texts = korean_texts(4)
    server.slow_seconds = 1.2
    server.fault(texts[0], "slow")  # lost: it may have been billed at its worst case
    src = write_rows(tmp_path / "in.jsonl", texts)
    w = [_worst(t, 50) for t in texts]
    max_cost = 2 * w[0] + w[1] + w[2] + w[3] / 2  # t3 fits only if the lost attempt were forgotten
    res = build_dpo([src], tmp_path / "out.jsonl", prices_path=_prices(tmp_path), max_cost=max_cost, max_tokens=50, concurrency=1,
                    **{**fast, "timeout": 0.2, "late_wait": 0.1})
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["t0", "t1", "t2"]
    assert [(r["id"], r["reason"]) for r in read_jsonl(tmp_path / "out.rejects.jsonl")] == [("t3", "dpo_budget_exceeded")]
    assert res.report["unreported_attempts"] == 1 and res.report["cost_unreported_max_usd"] == pytest.approx(w[0])
    assert res.report["cost_usd"] == pytest.approx(w[0] + w[1] + w[2])
    deadline = time.time() + 10
    while server.billed["answers"] < 4 and time.time() < deadline:
        time.sleep(0.05)
    billed = (server.billed["prompt_tokens"] + server.billed["completion_tokens"]) * 0.001
    assert billed == pytest.approx(2 * w[0] + w[1] + w[2]) and billed <= max_cost
