"""Batch mode end to end against the fake server's files and batches endpoints."""

import orjson
import pyarrow.parquet as pq
import pytest

from kodolly.dpo import build_dpo
from kodolly.dpo.cache import TranslationCache

from .conftest import korean_texts, write_rows
from .fakeopenai import romanize


def read_jsonl(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_batch_end_to_end(tmp_path, server, fast):
    texts = korean_texts(10) + [korean_texts(10)[0]]  # a duplicate: one request
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.parquet", batch=True, **fast)
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(11)]
    assert [r["rejected"] for r in rows] == [romanize(t) for t in texts]
    assert server.chat_counts == {}  # no live request
    assert sum(server.batch_counts.values()) == 10
    assert len(server.batches) == 1 and res.report["batch_ids"] == list(server.batches)
    assert res.report["mode"] == "batch" and res.report["requests"] == 10
    # batch prices are half
    p = sum(len(t) // 2 + 10 for t in texts[:10])
    c = sum(len(romanize(t)) // 4 + 1 for t in texts[:10])
    assert res.report["cost_usd"] == pytest.approx((p * 0.15 + c * 0.6) / 1e6 / 2)
    # the upload was a JSONL request file with one custom_id per text
    uploaded = [v for k, v in server.files.items() if b'"custom_id"' in v and b'"url"' in v]
    lines = [orjson.loads(x) for x in uploaded[0].splitlines()]
    assert len({x["custom_id"] for x in lines}) == 10 and lines[0]["url"] == "/v1/chat/completions"
    m = res.manifest_data["dpo"]
    assert m["mode"] == "batch" and m["batch_ids"] == res.report["batch_ids"]


def test_partially_failed_batch_is_resubmitted(tmp_path, server, fast):
    texts = korean_texts(12)
    server.batch_plan = ["partial", "ok"]
    server.batch_fail = [texts[3], texts[7]]
    server.fault(texts[5], "refusal")  # a bad translation is asked once more in the next round
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(12)] and res.tally.rejected == 0
    assert [r["rejected"] for r in rows] == [romanize(t) for t in texts]
    assert len(server.batches) == 2
    assert {t: n for t, n in server.batch_counts.items() if n > 1} == {texts[3]: 2, texts[7]: 2, texts[5]: 2}
    assert res.report["requests"] == 12 + 3


def test_expired_batch_then_rest_resubmitted(tmp_path, server, fast):
    texts = korean_texts(8)
    server.batch_plan = ["expired", "ok"]
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    assert res.tally.written == 8
    statuses = [b["status"] for b in server.batches.values()]
    assert statuses == ["expired", "completed"]
    second = list(server.batches.values())[1]
    assert second["request_counts"]["total"] == 4  # only the unanswered half went again
    assert all(n == 1 for n in server.batch_counts.values())


def test_failed_batches_until_rounds_run_out(tmp_path, server, fast):
    texts = korean_texts(4)
    server.batch_plan = ["failed", "failed"]
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, batch_rounds=2, **fast)
    assert res.tally.written == 0 and res.tally.by_reason == {"dpo_batch_failed": 4}
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert "server_error: batch failed" in rejects[0]["detail"]
    assert len(server.batches) == 2
    # next run: the batches are collected (not re-attached) and a new one succeeds
    res2 = build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    assert res2.tally.written == 4 and len(server.batches) == 3


def test_restarted_run_reattaches_to_stored_batch(tmp_path, server, fast):
    texts = korean_texts(6)
    src = write_rows(tmp_path / "in.jsonl", texts)

    class Killed(Exception):
        pass

    # the first run dies while polling (after the batch was created and stored)
    from kodolly.dpo import batch as batch_mod

    real_poll = batch_mod.BatchRunner._poll

    def dying_poll(self, batch_id):
        raise Killed()

    batch_mod.BatchRunner._poll = dying_poll
    try:
        with pytest.raises(Killed):
            build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    finally:
        batch_mod.BatchRunner._poll = real_poll
    assert len(server.batches) == 1 and not (tmp_path / "out.jsonl").exists()
    stored = TranslationCache(fast["cache_path"])
    assert len(stored.open_batches(next(iter(_signatures(fast["cache_path"]))))) == 1
    stored.close()
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    assert len(server.batches) == 1  # re-attached, not re-created
    assert res.report["batch_ids"] == list(server.batches)
    assert res.tally.written == 6 and sum(server.batch_counts.values()) == 6


def _signatures(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT signature FROM batches")]


def test_batch_401_stops_at_once(tmp_path, server, fast):
    from kodolly.dpo.client import ApiFatalError

    server.reject_all = True
    src = write_rows(tmp_path / "in.jsonl", korean_texts(3))
    with pytest.raises(ApiFatalError, match=r"HTTP 401.*Incorrect API key provided: \*\*\*") as err:
        build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    assert "sk-" not in str(err.value)
    assert server.batches == {} and not (tmp_path / "out.jsonl").exists()


def test_batch_max_cost(tmp_path, server, fast):
    texts = korean_texts(20)
    src = write_rows(tmp_path / "in.jsonl", texts)
    prices = tmp_path / "p.toml"
    prices.write_text("[gpt-4o-mini]\ninput = 1000.0\noutput = 1000.0\n")
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, prices_path=str(prices), max_cost=0.3, max_tokens=100, **fast)
    assert res.budget_exhausted and res.report["cost_usd"] <= 0.3
    sent = sum(server.batch_counts.values())
    assert 0 < sent < 20 and res.tally.written == sent
    assert res.tally.by_reason == {"dpo_budget_exceeded": 20 - sent}
    assert len(server.batches) == 1


def test_large_runs_split_into_several_batches(tmp_path, server, fast):
    texts = korean_texts(11)
    server.batch_plan = ["ok", "partial", "ok"]
    server.batch_fail = [texts[5]]  # in the second batch
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, batch_max_requests=4, **fast)
    assert [b["request_counts"]["total"] for b in server.batches.values()] == [4, 4, 3, 1]
    assert res.tally.written == 11 and res.report["batch_ids"] == list(server.batches)
    assert res.report["requests"] == 12


class _Killed(Exception):
    pass


def _pending(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT input_file_id FROM pending_batches").fetchall()


def test_kill_between_create_and_storing_the_id_reattaches_from_the_batch_list(tmp_path, server, fast, monkeypatch):
    from kodolly.dpo import batch as batch_mod

    texts = korean_texts(6)
    src = write_rows(tmp_path / "in.jsonl", texts)
    real_attach = TranslationCache.attach_batch

    def killed_attach(self, file_id, batch_id):
        raise _Killed()  # the batch exists at the API; its id never reached the cache

    monkeypatch.setattr(TranslationCache, "attach_batch", killed_attach)
    with pytest.raises(_Killed):
        build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    monkeypatch.setattr(TranslationCache, "attach_batch", real_attach)
    (orphan,) = server.batches
    assert _pending(fast["cache_path"]) == [(server.batches[orphan]["input_file_id"],)]
    for i in range(5):  # other batches of the account, newer than ours: the list is read over several pages
        server.batches[f"batch_other{i}"] = dict(server.batches[orphan], id=f"batch_other{i}", input_file_id=f"file-other{i}")
    monkeypatch.setattr(batch_mod, "LIST_PAGE_SIZE", 2)
    logs = []
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, log=logs.append, **fast)
    assert len(server.batches) == 6  # re-attached, no new batch created
    assert res.report["batch_ids"] == [orphan] and server.batch_lists == 3
    assert res.tally.written == 6 and sum(server.batch_counts.values()) == 6
    assert [r["rejected"] for r in read_jsonl(tmp_path / "out.jsonl")] == [romanize(t) for t in texts]
    assert _pending(fast["cache_path"]) == [] and any(f"found batch {orphan}" in m for m in logs)


def test_kill_before_the_batch_was_created_sends_the_texts_again(tmp_path, server, fast, monkeypatch):
    from kodolly.dpo.batch import BatchRunner

    src = write_rows(tmp_path / "in.jsonl", korean_texts(5))

    def killed_create(self, file_id):
        raise _Killed()

    real_create = BatchRunner._create
    monkeypatch.setattr(BatchRunner, "_create", killed_create)
    with pytest.raises(_Killed):
        build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    monkeypatch.setattr(BatchRunner, "_create", real_create)
    assert server.batches == {} and len(_pending(fast["cache_path"])) == 1
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    assert server.batch_lists == 1 and len(server.batches) == 1  # looked, found nothing, created one
    assert res.tally.written == 5 and all(n == 1 for n in server.batch_counts.values())
    assert _pending(fast["cache_path"]) == []
    # a normal run never lists batches
    server.batch_lists = 0
    build_dpo([write_rows(tmp_path / "in2.jsonl", korean_texts(7))], tmp_path / "out2.jsonl", batch=True, **fast)
    assert server.batch_lists == 0


def test_retried_create_does_not_make_a_second_batch(tmp_path, server, fast):
    texts = korean_texts(4)
    server.create_faults = ["drop"]  # the batch is made at the API, but its answer is lost: the client retries
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", batch=True, **fast)
    assert len(server.batches) == 1 and server.batch_lists == 1 and res.report["batch_ids"] == list(server.batches)
    assert res.tally.written == 4 and all(n == 1 for n in server.batch_counts.values())
    assert res.report["retries"] >= 1
