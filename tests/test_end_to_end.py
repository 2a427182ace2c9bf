"""Raw zips to a tuned adapter in a few commands, all through the ``kodolly`` CLI (click's CliRunner):

1. ``kodolly convert`` the AI Hub 71748 zips as shipped (a split ``.zip.part0/1`` with cp949 names, Other,
   원천 and Validation zips) plus the Hansol Deco CSV, with a domain filter, dedup and a split;
2. ``kodolly build-dpo`` against the real fake-OpenAI server of tests/dpo (translations as ``rejected``);
3. ``kodolly publish`` to a Hub folder, read back with ``datasets.load_dataset``;
4. ``kodolly train sft`` on the converted rows for a couple of steps, on a tiny model built here;
5. ``kodolly generate`` with the run folder (base model + adapter).

Every step's counts are checked against the previous one: nothing is lost on the way.
"""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dpo.fakeopenai import FakeOpenAI, romanize
from kodolly.cli import cli
from support import FIXTURES, load_tiny_model

KEY = "sk-test-kodolly-E2E-4b1d"

# What the AI Hub zips and the Hansol CSV hold (fixtures/aihub/make_fixtures.py, fixtures/hansol/):
# aihub: 13 records read; 4 answers equal their question, 3 rows in 예체능/종교/보건, one PPO record without
# an answer, one corpus text that is not QA -> 4 kept. hansol: 4 CSV rows -> 8 question x answer rows kept,
# TRAIN_002 has no 질문_2, TRAIN_003 no answer.
CONVERT_SOURCES = {
    "aihub": {"read": 13, "written": 4, "rejected": 9,
              "by_reason": {"answer_equals_question": 4, "domain_excluded": 3, "no_answer": 1, "not_qa": 1}},
    "hansol": {"read": 10, "written": 8, "rejected": 2, "by_reason": {"missing_field:질문_2": 1, "no_answer": 1}},
}
SPLITS = {"train": 10, "validation": 2}


@pytest.fixture
def openai_server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def kodolly(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_raw_zips_to_tuned_adapter(tmp_path, openai_server, one_thread):
    # 1. convert --------------------------------------------------------------------------------------
    data = tmp_path / "ko.parquet"
    out = kodolly(
        "convert", FIXTURES / "aihub", "--from", "aihub", "--input", f"hansol:{FIXTURES / 'hansol' / 'train_utf8.csv'}",
        "--exclude-domain", "예체능,종교,보건", "--split", "train=0.8,validation=0.2", "-o", data,
    )
    assert "tally OK: read 23 = written 12 + rejected 11" in out.output
    manifest = json.loads((tmp_path / "ko.manifest.json").read_text("utf-8"))
    assert manifest["counts"]["sources"] == CONVERT_SOURCES
    assert [f["name"] for f in manifest["filters"]] == ["domain", "content", "dedup", "split"]
    # the split zip was read whole: both of its members, named by their cp949 paths
    names = [i["name"] for i in manifest["inputs"]]
    assert any(n.endswith("TL_02.RLHF데이터.zip!/SFTlabel.json") for n in names)
    assert any(n.endswith("TL_02.RLHF데이터.zip!/RMlabel.json") for n in names)
    rows = pq.read_table(data).to_pylist()
    rejects = [json.loads(line) for line in (tmp_path / "ko.rejects.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 12 and len(rejects) == 11 and all(r["reason"] and r["file"] for r in rejects)
    assert {s: sum(r["split"] == s for r in rows) for s in SPLITS} == SPLITS
    assert sorted({r["source"] for r in rows}) == ["aihub", "hansol"]
    assert {r["domain"] for r in rows}.isdisjoint({"예체능", "종교", "보건"})

    # 2. build-dpo against the fake OpenAI server ----------------------------------------------------
    pairs = tmp_path / "dpo.parquet"
    out = kodolly(
        "build-dpo", data, "-o", pairs, "--base-url", openai_server.base_url, "--cache", tmp_path / "cache.sqlite",
        "--retry-base-delay", "0.01", "--no-progress",
    )
    assert "tally OK: read 12 = written 12 + rejected 0" in out.output
    # 9 distinct answers: a Hansol answer is shared by the two phrasings of its question, and is translated once.
    # Whether a repeat is met while its first copy is in flight (deduped) or after it was cached (a cache hit)
    # depends on thread timing, so only the requests and retries are pinned here.
    report = re.search(r"requests (\d+), cache hits (\d+), retries (\d+)", out.output)
    assert report is not None, out.output
    assert (int(report.group(1)), int(report.group(3))) == (9, 0)
    assert sum(openai_server.chat_counts.values()) == 9 == len({r["response"] for r in rows})
    dpo_rows = pq.read_table(pairs).to_pylist()
    assert [r["id"] for r in dpo_rows] == [r["id"] for r in rows]
    assert all(p["rejected"] == romanize(r["response"]) and p["response"] == r["response"] for p, r in zip(dpo_rows, rows))
    assert [p["split"] for p in dpo_rows] == [r["split"] for r in rows]
    dpo_manifest = json.loads((tmp_path / "dpo.manifest.json").read_text("utf-8"))
    assert dpo_manifest["dpo"]["mode"] == "translate" and dpo_manifest["dpo"]["requests"] == 9
    assert dpo_manifest["counts"]["written"] == 12 and dpo_manifest["dpo"]["base_url_host"] == openai_server.base_url.split("/")[2]
    assert KEY not in (tmp_path / "dpo.manifest.json").read_text("utf-8") + out.output

    # 3. publish to a Hub folder and load it with datasets --------------------------------------------
    import datasets

    folder = tmp_path / "hub"
    kodolly("publish", data, "-o", folder, "--title", "ko-dolly e2e")
    loaded = datasets.load_dataset(str(folder))
    assert {name: split.num_rows for name, split in loaded.items()} == SPLITS
    assert {s: sorted(loaded[s]["id"]) for s in SPLITS} == {s: sorted(r["id"] for r in rows if r["split"] == s) for s in SPLITS}
    card = (folder / "README.md").read_text("utf-8")
    assert "AI Hub terms" in card and "ko-dolly e2e" in card
    assert json.loads((folder / "kodolly.manifest.json").read_text("utf-8"))["counts"] == manifest["counts"]

    # 4. train sft for a couple of steps on a tiny model that knows these characters ------------------
    tiny = load_tiny_model().build_tiny(tmp_path / "tiny", "".join(r["instruction"] + r["context"] + r["response"] for r in rows))
    run_dir = tmp_path / "run"
    out = kodolly(
        "train", "sft", data, "--model", tiny, "-o", run_dir, "--lora-r", "4",
        "--set", "max_steps=2", "--set", "per_device_train_batch_size=4", "--set", "logging_steps=1",
        "--set", "activation_checkpointing=false", "--set", "disable_tqdm=true",
    )
    lines = out.output.splitlines()
    assert lines[0] == "data: 12 rows, train 10, validation 2, long prompts dropped 0"
    assert [line.split("  ")[0] for line in lines if line.startswith("step ")] == ["step 1/2", "step 2/2"]
    assert any(line.startswith("validation loss: ") for line in lines)  # the 2 validation rows are evaluated
    assert lines[-1].startswith("trained 2 steps in ") and lines[-1].endswith(f"; adapter in {run_dir}")
    assert (run_dir / "adapter_config.json").exists() and (run_dir / "adapter_model.safetensors").exists()
    record = json.loads((run_dir / "kodolly_train.json").read_text("utf-8"))
    assert (record["data"]["rows"], record["data"]["train"], record["data"]["validation"]) == (12, 10, 2)
    assert record["metrics"]["global_step"] == 2

    # 5. generate with the run folder (the base model named in the adapter, plus the adapter) ---------
    answer = kodolly("generate", run_dir, rows[0]["instruction"], "--max-new-tokens", "6")
    text = answer.stdout.rstrip("\n")
    assert len(text) <= 6  # a character tokenizer: at most one character a new token
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tiny")
    vocabulary_text = set("".join(tokenizer.decode([i]) for i in range(len(tokenizer))))
    assert set(text) <= vocabulary_text | {" "}  # (the raw tokenizer.json escapes "\n", so read the decoded tokens)
