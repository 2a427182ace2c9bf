"""``kodolly export``: files in the layouts LLaMA-Factory and axolotl read, and their configs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from kodolly.errors import ConfigError
from kodolly.export import export
from kodolly.export_check import check_export

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hub"
MIXED = FIXTURES / "mixed_rows.jsonl"  # Dolly rows, splits train 6 / validation 2 / test 1
DPO = FIXTURES / "dpo_pairs.jsonl"  # Dolly + rejected, splits train 2 / validation 1
CONV = FIXTURES / "dpo_conversational.jsonl"  # trl conversational, no split column


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_llamafactory_alpaca_with_system(tmp_path):
    dest = tmp_path / "lf" / "ko_sft.jsonl"
    result = export(MIXED, dest, target="llamafactory", system="친절하게 답하세요.")
    rows = _jsonl(dest)
    assert result.rows == len(rows) == 6
    assert rows[0] == {
        "instruction": "세종대왕이 만든 문자는 무엇인가?",
        "input": "세종대왕은 1443년에 훈민정음을 창제하였다.",
        "output": "훈민정음",
        "system": "친절하게 답하세요.",
    }
    printed = json.loads(result.snippet)
    on_disk = json.loads((tmp_path / "lf" / "dataset_info.json").read_text("utf-8"))
    assert printed == on_disk == {"ko_sft": {
        "file_name": "ko_sft.jsonl",
        "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system"},
    }}
    assert set(printed["ko_sft"]["columns"].values()) == set(rows[0])


def test_llamafactory_sharegpt_parquet_and_dataset_info_is_merged(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"other": {"file_name": "other.json"}}), "utf-8")
    dest = tmp_path / "ko_chat.parquet"
    result = export(MIXED, dest, target="llamafactory", style="chat", split="validation")
    table = pq.read_table(dest)
    assert table.column_names == ["conversations"]
    assert table.column("conversations").to_pylist()[0] == [
        {"from": "human", "value": "훈민정음은 언제 반포되었는가?\n\n훈민정음은 1446년에 반포되었다."},
        {"from": "gpt", "value": "1446년"},
    ]
    assert result.rows == 2
    entry = result.config["ko_chat"]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "conversations"}
    tags = entry["tags"]
    assert {tags["role_tag"], tags["content_tag"]} == {"from", "value"}
    assert {m["from"] for conv in table.column("conversations").to_pylist() for m in conv} == {tags["user_tag"], tags["assistant_tag"]}
    info = json.loads((tmp_path / "dataset_info.json").read_text("utf-8"))
    assert sorted(info) == ["ko_chat", "other"]


def test_llamafactory_preference_pairs(tmp_path):
    dest = tmp_path / "ko_dpo.jsonl"
    result = export(DPO, dest, target="llamafactory")  # style from the `rejected` column
    assert result.style == "preference"
    rows = _jsonl(dest)
    assert rows == [
        {"instruction": "한국의 수도는 어디인가요?", "input": "", "chosen": "한국의 수도는 서울입니다.",
         "rejected": "The capital of Korea is Seoul."},
        {"instruction": "김치를 맛있게 담그는 방법을 알려 주세요.", "input": "",
         "chosen": "배추를 소금에 절인 뒤 양념을 골고루 바릅니다.", "rejected": "Salt the cabbage, then spread the seasoning evenly."},
    ]
    entry = json.loads(result.snippet)["ko_dpo"]
    assert entry["ranking"] is True
    assert set(entry["columns"].values()) == set(rows[0])


def test_axolotl_alpaca(tmp_path):
    dest = tmp_path / "ax.jsonl"
    result = export(MIXED, dest, target="axolotl", split="all")
    assert result.rows == 9 and result.dataset_info is None
    config = yaml.safe_load(result.snippet)
    assert config == {"datasets": [{"path": str(dest), "ds_type": "json", "split": "train", "type": "alpaca"}]}
    assert set(_jsonl(dest)[0]) == {"instruction", "input", "output"}


def test_axolotl_chat_template_messages(tmp_path):
    dest = tmp_path / "ax_chat.parquet"
    result = export(MIXED, dest, target="axolotl", style="chat", system="한국어로 답하세요.", split="test")
    config = yaml.safe_load(result.snippet)
    ds = config["datasets"][0]
    assert ds["type"] == "chat_template" and ds["ds_type"] == "parquet" and ds["path"] == str(dest)
    table = pq.read_table(dest)
    assert table.column_names == [ds["field_messages"]]
    messages = table.column("messages").to_pylist()[0]
    assert messages == [
        {"role": "system", "content": "한국어로 답하세요."},
        {"role": "user", "content": "한국의 수도는 어디인가요?"},
        {"role": "assistant", "content": "한국의 수도는 서울입니다."},
    ]
    assert set(ds["message_property_mappings"].values()) == set(messages[0])


def test_axolotl_dpo_from_conversational_pairs(tmp_path):
    dest = tmp_path / "ax_dpo.jsonl"
    result = export(CONV, dest, target="axolotl")
    config = yaml.safe_load(result.snippet)
    assert config["rl"] == "dpo"
    ds = config["datasets"][0]
    assert ds["type"] == "chat_template.default"
    rows = _jsonl(dest)
    assert set(rows[0]) == {ds["field_messages"], ds["field_chosen"], ds["field_rejected"]}
    assert rows[0] == {
        "messages": [{"role": "system", "content": "한국어로 답하세요."}, {"role": "user", "content": "한국의 수도는 어디인가요?"}],
        "chosen": {"role": "assistant", "content": "서울입니다."},
        "rejected": {"role": "assistant", "content": "Seoul."},
    }
    assert rows[1]["messages"] == [
        {"role": "user", "content": "1+1은?"}, {"role": "assistant", "content": "2입니다."}, {"role": "user", "content": "2+2는?"}]


def test_preference_needs_rejected_answers(tmp_path):
    with pytest.raises(ConfigError, match="needs rows with a rejected answer"):
        export(MIXED, tmp_path / "x.jsonl", target="llamafactory", style="preference")
    assert not (tmp_path / "x.jsonl").exists()
    assert list(tmp_path.iterdir()) == []


def test_unknown_split_and_bad_suffix(tmp_path):
    with pytest.raises(ConfigError, match="no rows in split 'dev'"):
        export(MIXED, tmp_path / "x.jsonl", target="axolotl", split="dev")
    with pytest.raises(ConfigError, match="name the export .jsonl or .parquet"):
        export(MIXED, tmp_path / "x.csv", target="axolotl")


# --- conversations: real turns in every export (issue 16) ---

KOVICUNA = Path(__file__).resolve().parents[1] / "fixtures" / "sharegpt" / "kovicuna_system.json"
SYSTEM = "당신은 친절한 한국어 비서입니다."
EXCHANGES = [
    ("서울의 인구는?", "약 940만 명입니다."),
    ("부산은?", "약 330만 명입니다."),
    ("두 도시 사이의 거리는 얼마나 돼?", "직선 거리로 약 325km입니다."),
    ("KTX로는 얼마나 걸려?", "KTX로 약 2시간 30분 걸립니다."),
]


@pytest.fixture
def conversation(tmp_path):
    """The KoVicuna conversation converted by kodolly (4 rows), and the same rows as DPO pairs."""
    from kodolly import api
    from kodolly.dpo.output import DpoWriter, layout_schema, make_pair

    rows = tmp_path / "rows.parquet"
    api.convert([KOVICUNA], "kovicuna", rows)
    table = pq.read_table(rows)
    schema = layout_schema("dolly", table.column_names)
    writer = DpoWriter(tmp_path / "dpo.parquet", "parquet", schema)
    writer.write([make_pair(r, r["response"], "Seoul.", "dolly", schema) for r in table.to_pylist()])
    writer.close()
    return rows, tmp_path / "dpo.parquet"


def _load(path):
    import datasets

    return datasets.load_dataset("parquet" if path.suffix == ".parquet" else "json", data_files=str(path), split="train")


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_llamafactory_sharegpt_turns_alternate_with_the_system_in_its_column(conversation, tmp_path, suffix):
    rows, _ = conversation
    dest = tmp_path / "lf" / f"chat{suffix}"
    result = export(rows, dest, target="llamafactory", style="chat")
    assert result.config["chat"]["columns"] == {"messages": "conversations", "system": "system"}
    ds = _load(dest)
    for k, row in enumerate(ds):
        assert row["system"] == SYSTEM
        turns = row["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt"] * (k + 1)
        assert [(u["value"], a["value"]) for u, a in zip(turns[::2], turns[1::2])] == EXCHANGES[: k + 1]


def test_llamafactory_alpaca_and_preference_with_history(conversation, tmp_path):
    rows, dpo = conversation
    export(rows, tmp_path / "a.jsonl", target="llamafactory", style="alpaca")
    ds = _load(tmp_path / "a.jsonl")
    assert ds[3] == {"instruction": EXCHANGES[3][0], "input": "", "output": EXCHANGES[3][1],
                     "history": [list(e) for e in EXCHANGES[:3]], "system": SYSTEM}
    assert ds[0]["history"] == [] and ds[0]["system"] == SYSTEM
    result = export(dpo, tmp_path / "p.parquet", target="llamafactory")
    assert result.style == "preference"
    assert result.config["p"]["columns"] == {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                             "rejected": "rejected", "history": "history", "system": "system"}
    assert check_export(result) == 4
    row = _load(tmp_path / "p.parquet")[2]
    assert (row["instruction"], row["input"], row["chosen"], row["rejected"]) == (EXCHANGES[2][0], "", EXCHANGES[2][1], "Seoul.")
    assert row["history"] == [list(e) for e in EXCHANGES[:2]] and row["system"] == SYSTEM


def test_axolotl_messages_carry_the_system_message_and_every_turn(conversation, tmp_path):
    rows, dpo = conversation
    export(rows, tmp_path / "c.jsonl", target="axolotl", style="chat")
    last = _load(tmp_path / "c.jsonl")[3]["messages"]
    assert last[0] == {"role": "system", "content": SYSTEM}
    assert [m["role"] for m in last[1:]] == ["user", "assistant"] * 4
    assert [m["content"] for m in last[1:]] == [t for e in EXCHANGES for t in e]
    assert check_export(export(dpo, tmp_path / "p.jsonl", target="axolotl")) == 4
    pair = _load(tmp_path / "p.jsonl")[1]
    assert pair["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": EXCHANGES[0][0]},
                                {"role": "assistant", "content": EXCHANGES[0][1]}, {"role": "user", "content": EXCHANGES[1][0]}]
    assert pair["chosen"] == {"role": "assistant", "content": EXCHANGES[1][1]}
    assert pair["rejected"] == {"role": "assistant", "content": "Seoul."}
    # axolotl's alpaca type has no history or system field: the conversation stays the context transcript
    export(rows, tmp_path / "a.jsonl", target="axolotl", style="alpaca")
    row = _jsonl(tmp_path / "a.jsonl")[1]
    assert row == {"instruction": "부산은?", "input": f"시스템: {SYSTEM}\n\n사용자: 서울의 인구는?\n\n어시스턴트: 약 940만 명입니다.",
                   "output": "약 330만 명입니다."}


def test_trl_conversational_prompts_export_as_turns(tmp_path):
    export(CONV, tmp_path / "lf.jsonl", target="llamafactory")
    rows = _jsonl(tmp_path / "lf.jsonl")
    assert rows[0]["system"] == "한국어로 답하세요." and rows[0]["history"] == []
    assert rows[1] == {"instruction": "2+2는?", "input": "", "chosen": "4입니다.", "rejected": "Four.",
                       "history": [["1+1은?", "2입니다."]], "system": ""}


def test_turn_quirks_export_as_alternating_turns(tmp_path):
    """A conversation that opens with the assistant and a question left unanswered before the next one."""
    from kodolly import api

    src = tmp_path / "q.jsonl"
    src.write_text(json.dumps({"id": "q", "conversations": [
        {"from": "gpt", "value": "무엇을 도와드릴까요?"},
        {"from": "human", "value": "하나"}, {"from": "system", "value": "짧게 답하세요."},
        {"from": "human", "value": "둘"}, {"from": "gpt", "value": "네"},
        {"from": "human", "value": "셋"}, {"from": "gpt", "value": "좋아요"},
    ]}, ensure_ascii=False) + "\n", "utf-8")
    api.convert([src], "sharegpt", tmp_path / "rows.jsonl")
    export(tmp_path / "rows.jsonl", tmp_path / "c.jsonl", target="axolotl", style="chat")
    last = _jsonl(tmp_path / "c.jsonl")[-1]["messages"]
    assert last == [
        {"role": "system", "content": "어시스턴트: 무엇을 도와드릴까요?\n\n짧게 답하세요."},
        {"role": "user", "content": "하나\n\n둘"}, {"role": "assistant", "content": "네"},
        {"role": "user", "content": "셋"}, {"role": "assistant", "content": "좋아요"},
    ]
