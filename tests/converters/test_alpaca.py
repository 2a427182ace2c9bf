"""The alpaca converter on one fixture per quirk of the Alpaca family (FORMATS.md)."""

from __future__ import annotations

import json

from support import FIXTURES, convert_to_parquet, strip_meta

A = FIXTURES / "alpaca"


def row(instruction, response, context="", id="", meta=None, **extra):
    out = {
        "instruction": instruction, "context": context, "response": response,
        "category": "closed_qa" if context else "open_qa",  # one rule: a row with a context is closed_qa
        "source": "alpaca", "id": id, "domain": "", "score": None, "license": "", "messages": [], "split": "train",
    }
    out.update(extra)
    return out


def test_koalpaca_v10_array_with_escaped_slashes_empty_input_and_code(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, A / "ko_alpaca_data.json", "alpaca")
    assert rejects == []
    assert strip_meta(rows) == [
        row("1/4 컵은 몇 큰술인가요?", "1/4 컵은 4 큰술입니다.", id="ko_alpaca_data.json:0"),
        row(
            "다음 파이썬 코드를 설명하세요.",
            "두 수를 더하는 함수입니다.\n\n```python\ndef add(a, b):\n    return a + b\n```",
            context="def add(a, b):\n    return a + b",
            id="ko_alpaca_data.json:1",
        ),
        row(
            "건강을 유지하는 세 가지 방법을 알려주세요.",
            "1. 규칙적으로 운동하세요.\n2. 균형 잡힌 식사를 하세요.\n3. 충분히 주무세요.",
            id="ko_alpaca_data.json:2",
        ),
    ]
    assert json.loads(rows[0]["meta"]) == {"file": str(A / "ko_alpaca_data.json"), "index": 0}


def test_koalpaca_v11_has_no_input_key_and_keeps_url(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, A / "KoAlpaca_v1.1.jsonl", "alpaca")
    assert rejects == []
    assert [(r["instruction"], r["context"], r["response"], r["id"]) for r in rows] == [
        ("양파는 어떤 식물 부위인가요?", "", "양파는 잎이 변형된 비늘줄기입니다.", "KoAlpaca_v1.1.jsonl:0"),
        ("스웨터의 유래는 어디에서 시작되었나요?", "", "스웨터는 영국의 어부들이 입던 옷에서 시작되었습니다.", "KoAlpaca_v1.1.jsonl:1"),
    ]
    assert json.loads(rows[1]["meta"]) == {
        "url": "https://kin.naver.com/qna/detail.naver?d1id=8&dirId=80101&docId=2",
        "file": str(A / "KoAlpaca_v1.1.jsonl"),
        "line": 2,
    }


def test_kullm_v2_ids_missing_input_and_blank_output(tmp_path):
    rows, rejects, result = convert_to_parquet(tmp_path, A / "kullm-v2.jsonl", "alpaca")
    assert strip_meta(rows) == [
        row("건강을 유지하기 위한 세 가지 팁을 알려주세요.", "세 가지 팁은 운동, 식사, 수면입니다.", id="alpaca_{0}"),
        row(
            "다음 문단을 요약하세요.", "서울은 인구 약 천만의 수도입니다.",
            context="서울은 대한민국의 수도이다. 인구는 약 천만 명이다.", id="dolly_{1}",
        ),
        row("입력이 없는 질문입니다.", "input 키가 없어도 됩니다.", id="alpaca_{3}"),
    ]
    assert [(r["reason"], r["line"], r["id"], r["raw"]["output"]) for r in rejects] == [
        ("empty_field:response", 3, "vicuna_{2}", " ")
    ]
    assert result.tally.as_dict()["by_reason"] == {"empty_field:response": 1}


def test_kullm_eval_nested_instances_one_row_each(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, A / "kullm_eval.json", "alpaca")
    assert rejects == []
    assert [(r["id"], r["instruction"], r["context"], r["response"]) for r in rows] == [
        ("1", "다음 문장의 맞춤법을 고치세요.", "안되요", "안 돼요"),
        ("2:0", "다음을 계산하세요.", "2 + 3", "5"),
        ("2:1", "다음을 계산하세요.", "4 × 5", "20"),
    ]
    assert json.loads(rows[1]["meta"])["motivation_app"] == "수학"


def test_preference_lookalike_tab_indented_keeps_rejected(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, A / "preference_lookalike.json", "alpaca")
    assert rejects == []
    assert strip_meta(rows) == [
        row("김치는 어떻게 만드나요?", "배추를 절이고 양념을 버무려 만듭니다.", id="pref-1"),
    ]
    assert json.loads(rows[0]["meta"])["rejected"] == "Kimchi is made by salting cabbage."


def test_spoken_style_trailing_spaces_placeholders_and_misspelled_id(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, A / "spoken_style.jsonl", "alpaca")
    assert rejects == []
    assert strip_meta(rows) == [
        row("name1 님이 내일 몇 시에 오시나요?", "세 시에 오십니다.", context="name1: 내일 세 시에 갈게요.", id="17"),
    ]


def test_whole_alpaca_folder_in_one_run(tmp_path):
    rows, rejects, result = convert_to_parquet(tmp_path, A, "alpaca")
    assert result.tally.read == 14  # 3 + 2 + 4 + 3 (instances) + 1 + 1
    assert result.tally.written == 13
    assert [r["reason"] for r in rejects] == ["empty_field:response"]
    assert len({r["id"] for r in rows}) == 13


def test_license_option_travels_into_rows(tmp_path):
    rows, _, result = convert_to_parquet(
        tmp_path, A / "KoAlpaca_v1.1.jsonl", "alpaca", options={"license": "CC BY-NC 4.0"}
    )
    assert {r["license"] for r in rows} == {"CC BY-NC 4.0"}
    assert result.manifest_data["converter"]["license"] == "CC BY-NC 4.0"


def test_detect_preference_lookalike_only_with_plain_strings():
    from kodolly.converters.alpaca import detect

    assert detect({"prompt": "p", "chosen": "c", "rejected": "r"}) == 0.8
    # trl's conversational DPO layout: lists of messages, which alpaca cannot read
    conversational = {"prompt": [{"role": "user", "content": "p"}], "chosen": [{"role": "assistant", "content": "c"}],
                      "rejected": [{"role": "assistant", "content": "r"}]}
    assert detect(conversational) == 0.0
