from __future__ import annotations

from support import FIXTURES, convert_to_parquet, strip_meta


def test_dolly_ko_checked_and_normalised(tmp_path):
    rows, rejects, result = convert_to_parquet(tmp_path, FIXTURES / "dolly" / "dolly_ko.jsonl", "dolly")
    assert strip_meta(rows) == [
        {
            "instruction": "버진 오스트레일리아는 언제 운항을 시작했나요?",
            "context": "버진 오스트레일리아는 2000년 8월 31일에 운항을 시작했다.",
            "response": "2000년 8월 31일입니다.",
            "category": "closed_qa", "source": "dolly", "id": "dolly_ko.jsonl:0",
            "domain": "", "score": None, "license": "CC BY-SA 3.0", "messages": [], "split": "train",
        },
        {
            "instruction": "물고기 종류를 분류하세요: 참치, 상어", "context": "",
            "response": "둘 다 바다 물고기입니다.", "category": "classification", "source": "dolly",
            "id": "ko-7", "domain": "", "score": None, "license": "CC BY-SA 3.0", "messages": [], "split": "train",
        },
        {
            "instruction": "컨텍스트 없음", "context": "", "response": "context 키가 없어도 됩니다.",
            "category": "open_qa", "source": "dolly", "id": "dolly_ko.jsonl:3",
            "domain": "", "score": None, "license": "CC BY-SA 3.0", "messages": [], "split": "train",
        },
    ]
    # a subject area in `category` is not a Dolly task type
    assert [(r["reason"], r["line"], r["detail"]) for r in rejects] == [
        ("bad_value:category", 3, "'보건' is not a Dolly task type")
    ]


def test_category_override_applies_to_every_row(tmp_path):
    rows, _, result = convert_to_parquet(
        tmp_path, FIXTURES / "alpaca" / "KoAlpaca_v1.1.jsonl", "alpaca", category="general_qa"
    )
    assert {r["category"] for r in rows} == {"general_qa"}
    assert result.manifest_data["converter"]["category_override"] == "general_qa"
