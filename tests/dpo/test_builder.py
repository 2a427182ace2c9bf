"""build_dpo against the real fake server: faults, order, dedupe, checks, layouts, manifest, budget, dry run."""

import json
import time
import jsonschema
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kodolly.dpo import build_dpo
from kodolly.dpo.client import ApiFatalError
from kodolly.manifest import load_schema, validate_manifest

from .conftest import FIXTURES, KEY, korean_texts, write_rows
from .fakeopenai import romanize


def read_jsonl(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_fixture_rows_skips_checks_dedupe_and_order(tmp_path, server, fast):
    server.fault("봄에", "refusal")  # first answer a refusal, asked once more -> good
    server.fault("제주", "echo", "cyrillic")  # bad twice -> rejected with the second reason
    res = build_dpo([FIXTURES / "rows.jsonl"], tmp_path / "out.parquet", **fast)
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["id"] for r in rows] == ["r0", "r1", "r5", "r6", "r8", "r9"]
    for r in rows:
        assert r["rejected"] == romanize(r["response"])
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert [(r["id"], r["reason"]) for r in rejects] == [
        ("r2", "dpo_asks_for_english"),
        ("r3", "dpo_code_response"),
        ("r4", "dpo_not_korean"),
        ("r7", "dpo_translation_not_latin"),
    ]
    assert rejects[3]["detail"] == "Перевод этого текста" and rejects[3]["index"] == 7
    # r0 and r5 share a response: one request; the refusal of r8 was asked once more
    assert server.chat_counts["한국의 수도는 서울입니다."] == 1
    assert server.chat_counts["봄에는 개나리와 진달래가 핍니다."] == 2
    assert server.chat_counts["제주도는 한국에서 가장 큰 섬입니다."] == 2
    # a Korean apology translated as an English apology is a translation, not a refusal
    assert rows[-1]["id"] == "r9"
    t = res.tally
    assert (t.read, t.written, t.rejected, t.balanced) == (10, 6, 4, True)
    assert res.report["requests"] == sum(server.chat_counts.values()) == 8
    assert res.report["deduped"] + res.report["cache_hits"] == 1 and res.report["check_retries"] == 2


def test_faults_no_row_lost_or_duplicated(tmp_path, server, fast):
    server.slow_seconds = 0.5
    texts = korean_texts(40)
    kinds = ["429", "500", "slow", "drop", "malformed"]
    for i in range(0, 40, 3):
        server.fault(texts[i], kinds[i % 5], kinds[(i + 1) % 5])
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", **{**fast, "timeout": 0.25})
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(40)]
    assert [r["rejected"] for r in rows] == [romanize(t) for t in texts]
    assert res.tally.rejected == 0
    injected = {}
    for i in range(0, 40, 3):
        for k in (kinds[i % 5], kinds[(i + 1) % 5]):
            injected[k] = injected.get(k, 0) + 1
    names = {"429": "rate_limit", "500": "http_500", "slow": "timeout", "drop": "connection", "malformed": "malformed"}
    by_kind = res.report["retries_by_kind"]
    # every injected fault was retried: as its own kind, or as a timeout where a busy machine kept the
    # client waiting past its 0.25 s for that fault's answer (the fault was used up all the same)
    assert set(by_kind) <= set(names.values()), by_kind
    short = {k: n - by_kind.get(names[k], 0) for k, n in injected.items() if k != "slow"}
    assert all(0 <= gap <= n for gap, n in zip(short.values(), (injected[k] for k in short))), (by_kind, injected)
    assert by_kind.get("timeout", 0) >= injected["slow"] + sum(short.values()), (by_kind, injected)
    assert sum(server.chat_counts.values()) == 40 + res.report["retries"] == res.report["requests"]


def test_gives_up_after_max_retries_with_reason(tmp_path, server, fast):
    texts = korean_texts(3)
    server.fault(texts[1], "500", "500", "500")
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", max_retries=2, **fast)
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert [(r["id"], r["reason"]) for r in rejects] == [("t1", "dpo_api_error")]
    assert "gave up after 3 attempts" in rejects[0]["detail"]
    assert res.tally.written == 2
    # an API error is not cached: the next run asks again and succeeds
    res2 = build_dpo([src], tmp_path / "out.jsonl", max_retries=2, **fast)
    assert res2.tally.written == 3 and res2.report["cache_hits"] == 2


def test_401_stops_at_once_nothing_written_key_redacted(tmp_path, server, fast):
    texts = korean_texts(30)
    for t in texts[5:]:
        server.fault(t, "401")
    server.latency = 0.02
    src = write_rows(tmp_path / "in.jsonl", texts)
    with pytest.raises(ApiFatalError) as err:
        build_dpo([src], tmp_path / "out.parquet", concurrency=2, **fast)
    msg = str(err.value)
    assert "HTTP 401" in msg and "Incorrect API key provided: ***" in msg and KEY not in msg
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "out.manifest.json").exists()
    assert not (tmp_path / "out.rejects.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    # stopped at once: far fewer than 30 requests; a 401 text asked exactly once (no retry)
    assert sum(server.chat_counts.values()) <= 10
    assert all(server.chat_counts[t] <= 1 for t in texts[5:])
    # what finished is kept: the next run (key fixed) pays only for the rest
    done_before = server.served
    server.faults.clear()
    res = build_dpo([src], tmp_path / "out.parquet", concurrency=2, **fast)
    assert res.report["cache_hits"] == done_before
    assert res.report["requests"] == 30 - done_before
    assert res.tally.written == 30


def test_layouts_and_split_column(tmp_path, server, fast):
    table = pa.Table.from_pylist([json.loads(line) for line in (FIXTURES / "rows.jsonl").read_text("utf-8").splitlines()])
    table = table.append_column("split", pa.array(["train"] * 9 + ["test"]))
    pq.write_table(table, tmp_path / "in.parquet")
    build_dpo([tmp_path / "in.parquet"], tmp_path / "trl.jsonl", layout="trl", **fast)
    trl = read_jsonl(tmp_path / "trl.jsonl")
    assert list(trl[0]) == ["prompt", "chosen", "rejected", "source", "id", "split"]
    by_id = {r["id"]: r for r in trl}
    assert by_id["r6"]["prompt"] == "부산은 어떤 도시인가요?\n\n부산광역시는 대한민국 남동부에 있다."
    assert by_id["r9"]["split"] == "test" and by_id["r0"]["chosen"] == "한국의 수도는 서울입니다."
    build_dpo([tmp_path / "in.parquet"], tmp_path / "conv.parquet", layout="trl-conversational", **fast)
    conv = pq.read_table(tmp_path / "conv.parquet").to_pylist()
    assert conv[0]["prompt"] == [{"role": "user", "content": "한국의 수도는 어디인가요?"}]
    assert conv[0]["chosen"] == [{"role": "assistant", "content": "한국의 수도는 서울입니다."}]
    assert conv[0]["rejected"] == [{"role": "assistant", "content": romanize("한국의 수도는 서울입니다.")}]
    build_dpo([tmp_path / "in.parquet"], tmp_path / "dolly.parquet", **fast)
    dolly = pq.read_table(tmp_path / "dolly.parquet")
    schema = load_schema("dpo-row")
    for row in trl + conv + dolly.to_pylist():
        jsonschema.validate(row, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**trl[0], "rejected": ""}, schema)
    assert dolly.column_names[-2:] == ["split", "rejected"] and dolly.column_names[:4] == ["instruction", "context", "response", "category"]
    # every layout after the first run came from the cache
    assert sum(server.chat_counts.values()) == 6


def test_datasets_folder_in_and_out(tmp_path, server, fast):
    datasets = pytest.importorskip("datasets")
    rows = [json.loads(line) for line in (FIXTURES / "rows.jsonl").read_text("utf-8").splitlines()]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "in_ds"))
    res = build_dpo([tmp_path / "in_ds"], tmp_path / "out_ds", output_format="datasets", layout="trl", **fast)
    ds = datasets.load_from_disk(str(tmp_path / "out_ds"))
    assert ds.num_rows == res.tally.written == 7
    assert ds[0]["rejected"] == romanize(ds[0]["chosen"])


def test_manifest_dpo_section(tmp_path, server, fast):
    res = build_dpo([FIXTURES / "rows.jsonl"], tmp_path / "out.parquet", **fast)
    m = json.loads((tmp_path / "out.manifest.json").read_text())
    validate_manifest(m)
    assert m["converter"]["name"] == "build-dpo" and m["filters"] == []
    d = m["dpo"]
    assert d["mode"] == "translate" and d["model"] == "gpt-4o-mini" and d["layout"] == "dolly"
    assert d["base_url_host"] == server.base_url.split("/")[2] and d["batch_ids"] == []
    # r5 repeats r0's response: served by the in-flight dedupe or, once r0 is done, by the cache
    assert d["requests"] == 6 and d["cache_hits"] + res.report["deduped"] == 1 and d["retries"] == 0, res.report
    usage = sum(len(t) // 2 + 10 for t in server.chat_counts), sum(len(romanize(t)) // 4 + 1 for t in server.chat_counts)
    assert d["tokens"] == {"prompt": usage[0], "completion": usage[1]}
    assert d["cost_usd"] == pytest.approx((usage[0] * 0.15 + usage[1] * 0.60) / 1e6)
    assert m["counts"]["read"] == 10 and m["counts"]["balanced"] is True
    assert m["output"]["files"][0]["rows"] == 7 and m["rejects"]["rows"] == 3
    assert res.manifest_data == m


def test_max_cost_stops_before_budget(tmp_path, server, fast):
    texts = korean_texts(30)
    src = write_rows(tmp_path / "in.jsonl", texts)
    prices = tmp_path / "prices.toml"
    prices.write_text('[gpt-4o-mini]\ninput = 1000.0\noutput = 1000.0\n')  # $0.001 per token: a request costs ~$0.05
    res = build_dpo([src], tmp_path / "out.jsonl", prices_path=str(prices), max_cost=0.5, concurrency=1, max_tokens=40, **fast)
    assert res.budget_exhausted
    assert res.report["cost_usd"] <= 0.5
    written = res.tally.written
    assert 0 < written < 30 and res.tally.by_reason == {"dpo_budget_exceeded": 30 - written}
    assert sum(server.chat_counts.values()) == written
    # raising the budget finishes only the rest
    res2 = build_dpo([src], tmp_path / "out.jsonl", prices_path=str(prices), max_cost=100, max_tokens=40, **fast)
    assert res2.tally.written == 30 and res2.report["cache_hits"] == written
    assert sum(server.chat_counts.values()) == 30


def test_dry_run_sends_and_writes_nothing(tmp_path, server, fast):
    res = build_dpo([FIXTURES / "rows.jsonl"], tmp_path / "out.parquet", dry_run=True, **fast)
    e = res.estimate
    assert sum(server.paths.values()) == 0
    assert list(tmp_path.iterdir()) == []
    assert e["rows"] == 10 and e["requests"] == 6 and e["duplicates"] == 1 and e["cached"] == 0
    assert e["skipped"] == {"dpo_asks_for_english": 1, "dpo_code_response": 1, "dpo_not_korean": 1}
    assert e["token_count_method"] == "tiktoken" and e["prompt_tokens"] > 6 * 30
    assert e["cost_usd"] == pytest.approx((e["prompt_tokens"] * 0.15 + e["completion_tokens_estimate"] * 0.6) / 1e6, abs=1e-6)
    batch = build_dpo([FIXTURES / "rows.jsonl"], None, dry_run=True, batch=True, **fast).estimate
    assert batch["cost_usd"] == pytest.approx(e["cost_usd"] / 2, abs=1e-6)


def test_results_in_input_order_whatever_the_completion_order(tmp_path, server, fast):
    texts = korean_texts(16)
    server.slow_seconds = 0.15
    for t in texts[::2]:
        server.fault(t, "slow")  # even rows answer late
    src = write_rows(tmp_path / "in.jsonl", texts)
    build_dpo([src], tmp_path / "out.jsonl", concurrency=8, **fast)
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [f"t{i}" for i in range(16)]


def test_concurrency_is_bounded(tmp_path, server, fast):
    server.latency = 0.05
    src = write_rows(tmp_path / "in.jsonl", korean_texts(24))
    build_dpo([src], tmp_path / "out.jsonl", concurrency=3, **fast)
    assert server.max_active == 3


def test_top_level_api_keeps_rows_in_memory(server, fast):
    import kodolly

    res = kodolly.build_dpo(FIXTURES / "rows.jsonl", layout="trl", **fast)
    rows = res.report["rows"]
    assert [r["id"] for r in rows] == ["r0", "r1", "r5", "r6", "r7", "r8", "r9"]
    assert rows[0] == {"prompt": "한국의 수도는 어디인가요?", "chosen": "한국의 수도는 서울입니다.",
                       "rejected": romanize("한국의 수도는 서울입니다."), "source": "koalpaca", "id": "r0"}
    assert res.output is None and res.tally.balanced


def test_rpm_limit_paces_requests(tmp_path, server, fast):
    src = write_rows(tmp_path / "in.jsonl", korean_texts(30))
    start = time.monotonic()
    build_dpo([src], tmp_path / "out.jsonl", rpm=1200, **fast)  # 20 a second, bursts of 20
    assert time.monotonic() - start >= 0.45  # 10 requests past the first burst at 20/s


def test_tpm_limit_paces_requests(tmp_path, server, fast):
    texts = korean_texts(12)
    src = write_rows(tmp_path / "in.jsonl", texts)
    total = sum(len(t) // 2 + 10 + len(romanize(t)) // 4 + 1 for t in texts)  # the fake server's usage
    rate = total / 1.5  # tokens a second; the bucket holds one second's worth
    start = time.monotonic()
    build_dpo([src], tmp_path / "out.jsonl", tpm=rate * 60, **fast)
    # even counting only real usage (estimates reserve more), the rest after the first second's worth waits
    assert time.monotonic() - start >= (total - rate) / rate * 0.95


@pytest.mark.parametrize("status", ["400", "403"])
def test_other_refusals_stop_at_once(tmp_path, server, fast, status):
    texts = korean_texts(4)
    server.fault(texts[2], status)
    src = write_rows(tmp_path / "in.jsonl", texts)
    with pytest.raises(ApiFatalError, match=f"HTTP {status}"):
        build_dpo([src], tmp_path / "out.jsonl", concurrency=1, **fast)
    assert server.chat_counts[texts[2]] == 1 and texts[3] not in server.chat_counts
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("status", ["502", "503", "504", "408"])
def test_other_transient_statuses_are_retried(tmp_path, server, fast, status):
    texts = korean_texts(2)
    server.fault(texts[0], status, status)
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", **fast)
    assert res.tally.written == 2 and res.report["retries"] == 2 and server.chat_counts[texts[0]] == 3


def test_without_cache_path_the_cache_goes_to_kodolly_cache_dir(tmp_path, server, fast):
    opts = {k: v for k, v in fast.items() if k != "cache_path"}
    src = write_rows(tmp_path / "in.jsonl", korean_texts(2))
    build_dpo([src], tmp_path / "out.jsonl", **opts)
    assert (tmp_path / "kodolly-cache" / "dpo.sqlite").is_file()  # the autouse fixture's folder, not the home


def test_reasoning_models_get_max_completion_tokens(tmp_path, server, fast):
    texts = korean_texts(3)
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", model="o4-mini", max_tokens=500, **fast)
    assert res.tally.written == 3
    assert [r["rejected"] for r in read_jsonl(tmp_path / "out.jsonl")] == [romanize(t) for t in texts]
    assert server.params and all(p == {"model": "o4-mini", "max_completion_tokens": 500} for p in server.params)
    # forcing max_tokens on a reasoning model: the server's 400 stops the run, as the real API's would
    with pytest.raises(ApiFatalError, match="HTTP 400.*Unsupported parameter: 'max_tokens'"):
        build_dpo([src], tmp_path / "out2.jsonl", model="o3", token_param="max_tokens", **fast)
    # other models keep max_tokens (what vLLM / Ollama accept), unless told otherwise
    server.params.clear()
    build_dpo([src], tmp_path / "out3.jsonl", max_tokens=500, **fast)
    assert server.params[0] == {"model": "gpt-4o-mini", "temperature": 0.0, "max_tokens": 500}
    build_dpo([src], tmp_path / "out4.jsonl", max_tokens=500, token_param="max_completion_tokens", **fast)
    assert server.params[-1] == {"model": "gpt-4o-mini", "temperature": 0.0, "max_completion_tokens": 500}


def test_reasoning_model_in_batch_mode(tmp_path, server, fast):
    texts = korean_texts(4)
    src = write_rows(tmp_path / "in.jsonl", texts)
    res = build_dpo([src], tmp_path / "out.jsonl", model="gpt-5-nano", batch=True, **fast)
    assert res.tally.written == 4 and sum(server.batch_counts.values()) == 4
    forced = build_dpo([src], tmp_path / "out2.jsonl", model="gpt-5-nano", batch=True, batch_rounds=1, token_param="max_tokens", **fast)
    assert forced.tally.by_reason == {"dpo_batch_failed": 4}
    assert "Unsupported parameter: 'max_tokens'" in read_jsonl(tmp_path / "out2.rejects.jsonl")[0]["detail"]


@pytest.mark.parametrize("batch", [False, True])
def test_retry_rejected_asks_again_for_cached_rejections(tmp_path, server, fast, batch):
    texts = korean_texts(3)
    server.fault(texts[1], "refusal", "refusal")  # asked once more, then rejected and cached as such
    src = write_rows(tmp_path / "in.jsonl", texts)
    counts = server.batch_counts if batch else server.chat_counts
    first = build_dpo([src], tmp_path / "out.jsonl", batch=batch, **fast)
    assert first.tally.by_reason == {"dpo_translation_refusal": 1} and counts[texts[1]] == 2
    again = build_dpo([src], tmp_path / "out.jsonl", batch=batch, **fast)  # the rejection comes from the cache
    assert again.tally.by_reason == {"dpo_translation_refusal": 1} and counts[texts[1]] == 2
    assert sum(counts.values()) == 4 and read_jsonl(tmp_path / "out.rejects.jsonl")[0]["detail"] == "cached"
    retried = build_dpo([src], tmp_path / "out.jsonl", batch=batch, retry_rejected=True, **fast)
    assert retried.tally.written == 3 and retried.tally.rejected == 0
    assert counts[texts[1]] == 3 and sum(counts.values()) == 5  # only the rejected text was asked again
    assert [r["rejected"] for r in read_jsonl(tmp_path / "out.jsonl")] == [romanize(t) for t in texts]
    # its good translation replaced the rejection in the cache: a plain run now pays nothing
    final = build_dpo([src], tmp_path / "out.jsonl", batch=batch, **fast)
    assert final.tally.written == 3 and sum(counts.values()) == 5


def test_retry_rejected_keeps_this_runs_rejections(tmp_path, server, fast):
    texts = korean_texts(2)
    server.fault(texts[0], "refusal", "refusal", "refusal", "refusal")
    src = write_rows(tmp_path / "in.jsonl", texts + [texts[0]])  # the repeat is served this run's rejection
    build_dpo([src], tmp_path / "out.jsonl", **fast)
    res = build_dpo([src], tmp_path / "out.jsonl", retry_rejected=True, **fast)
    assert res.tally.by_reason == {"dpo_translation_refusal": 2} and server.chat_counts[texts[0]] == 4
    est = build_dpo([src], None, dry_run=True, retry_rejected=True, **fast).estimate
    assert est["requests"] == 1 and est["cached"] == 1  # the dry run counts the rejected text as to be sent
