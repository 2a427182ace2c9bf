"""AI Hub 71748 (converters/aihub.py + the shipped aihub-sft / aihub-other layouts), from hand-made zips.

Fixtures: fixtures/aihub (built by fixtures/aihub/make_fixtures.py) — cp949 member names without the UTF-8
flag, a split zip cut mid-member, SFT, RM, PPO, corpus and Other records, answer == question.
"""

import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import kodolly
from kodolly.rows import load_meta

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

AIHUB = Path(__file__).resolve().parents[2] / "fixtures" / "aihub"
LABELS = AIHUB / "Training" / "02.라벨링데이터"
SPLIT = LABELS / "TL_02.RLHF데이터.zip.part0"


def convert(path, **kwargs):
    rejects: list[dict] = []
    tally = kodolly.Tally()
    rows = list(kodolly.iter_rows(path, "aihub", rejects=rejects, tally=tally, **kwargs))
    assert tally.balanced and tally.read == len(rows) + len(rejects)
    return rows, rejects, tally


def brief(row):
    return (row["id"], row["instruction"], row["context"], row["response"], row["category"], row["domain"])


def test_fixture_member_names_are_cp949_without_utf8_flag():
    with zipfile.ZipFile(AIHUB / "Other" / "Other.zip") as archive:
        (info,) = archive.infolist()
    assert not info.flag_bits & 0x800
    assert info.filename.encode("cp437") == "기타/기타_질의응답.json".encode("cp949")


def test_split_zip_sft_and_rm_records():
    assert not zipfile.is_zipfile(SPLIT)  # part0 alone is not an archive: the parts must be joined
    rows, rejects, tally = convert(SPLIT)
    assert [brief(r) for r in rows] == [
        (
            "b7e2d9a0-0001-4f2b-8c3d-000000000001",
            "감기에 걸렸을 때 먹으면 좋은 음식은 뭐가 있을까요?",
            "",
            "따뜻한 죽이나 국처럼 소화가 잘 되는 음식과 비타민 C가 많은 과일이 좋습니다.",
            "open_qa",
            "보건",
        ),
        (
            "a3f1c2d4-0001-4c1e-9b1a-000000000001",
            "지방자치제도의 장점은 무엇인가요?",
            "",
            "지방자치제도는 주민이 지역의 일을 스스로 결정하게 하여 행정이 지역 실정에 맞게 이루어지도록 합니다.",
            "open_qa",
            "사회",
        ),
        # the question starts with a space in the source: normalisation strips it
        ("a3f1c2d4-0002-4c1e-9b1a-000000000002", "광합성은 식물 세포의 어디에서 일어나요?", "", "광합성은 식물 세포의 엽록체에서 일어납니다.", "open_qa", "자연"),
    ]
    assert [(r["reason"], r["file"].rsplit("!", 1)[1], r["index"]) for r in rejects] == [
        ("answer_equals_question", "/RMlabel.json", 1),
        ("answer_equals_question", "/SFTlabel.json", 2),
    ]
    assert rows[0]["license"] == "AI Hub terms" and rows[0]["source"] == "aihub"
    assert rows[0]["meta"]["file"].endswith("TL_02.RLHF데이터.zip!/RMlabel.json")
    assert tally.read == 5 and tally.written == 3


def test_rm_record_keeps_every_ranked_answer_best_first():
    rows, _rejects, _tally = convert(SPLIT)
    meta = rows[0]["meta"]
    assert meta["ranked_answers"] == [
        {"rank": 1, "text": "따뜻한 죽이나 국처럼 소화가 잘 되는 음식과 비타민 C가 많은 과일이 좋습니다."},
        {"rank": 2, "text": "죽이나 따뜻한 차가 좋습니다."},
        {"rank": 3, "text": "물을 많이 마시세요."},
        {"rank": 4, "text": "과일을 드세요."},
        {"rank": 5, "text": "아무거나 드세요."},
    ]
    assert meta["register"] == "구어체" and meta["question_type"] == "조언형"
    assert "ranked_answers" not in rows[1]["meta"]  # an SFT row


def test_other_file_one_row_per_qa_with_the_passage_as_context():
    rows, rejects, _tally = convert(AIHUB / "Other" / "Other.zip")
    passage = "반도체는 도체와 부도체의 중간 성질을 가진 물질이다. 대표적인 재료는 실리콘이다."
    assert [brief(r) for r in rows] == [
        ("기타_질의응답.json:0:0.0", "반도체란 무엇인가?", passage, "도체와 부도체의 중간 성질을 가진 물질이다.", "closed_qa", "공학"),
        ("기타_질의응답.json:0:0.1", "반도체의 대표적인 재료는?", passage, "실리콘이다.", "closed_qa", "공학"),
        ("기타_질의응답.json:1:0.0", "석가탄신일은 언제야?", "석가탄신일은 음력 4월 8일이다.", "음력 4월 8일이야.", "closed_qa", "종교"),
    ]
    assert rows[0]["meta"]["file"].endswith("Other.zip!기타/기타_질의응답.json")  # cp949 name decoded
    assert [(r["reason"], r["index"], r["part"], r["raw"]["question"]) for r in rejects] == [
        ("answer_equals_question", 0, "1.0", "트랜지스터는 어떤 소자인가?")
    ]


def test_ppo_record_is_rejected_no_answer():
    rows, rejects, _tally = convert(AIHUB / "Training" / "01.원천데이터" / "TS_02.RLHF데이터.zip")
    assert rows == []
    assert [(r["reason"], r["file"].rsplit("!", 1)[1], r["raw"]["question"]) for r in rejects] == [
        ("no_answer", "PPO/PPO_질문.json", "수채화를 처음 배울 때 필요한 준비물은?")
    ]


def test_corpus_record_is_rejected_not_qa():
    rows, rejects, _tally = convert(AIHUB / "Training" / "01.원천데이터" / "TS_01.한국어말뭉치데이터_문어체_WL01.zip")
    assert rows == []
    assert [(r["reason"], r["raw"]["data_title"]) for r in rejects] == [("not_qa", "지역 축제 소식")]


def test_validation_zip_answer_equal_to_question_up_to_whitespace():
    rows, rejects, _tally = convert(AIHUB / "Validation" / "02.라벨링데이터" / "VL.zip")
    assert [r["id"] for r in rows] == ["e9f0a1b2-0001-4c3d-9e4f-000000000001"]
    assert rows[0]["domain"] == "예체능"
    assert [(r["reason"], r["raw"]["data_id"]) for r in rejects] == [
        ("answer_equals_question", "e9f0a1b2-0002-4c3d-9e4f-000000000002")
    ]


def test_whole_tree_to_parquet_with_tally_and_manifest(tmp_path):
    out = tmp_path / "aihub.parquet"
    result = kodolly.convert(AIHUB, "aihub", out)
    counts = result.manifest_data["counts"]
    assert (counts["read"], counts["written"], counts["rejected"]) == (13, 7, 6)
    assert counts["by_reason"] == {"answer_equals_question": 4, "no_answer": 1, "not_qa": 1}
    table = pq.read_table(out)
    assert table.num_rows == 7
    rows = table.to_pylist()
    assert {r["domain"] for r in rows} == {"공학", "종교", "보건", "사회", "자연", "예체능"}
    ranked = [load_meta(r)["ranked_answers"] for r in rows if "ranked_answers" in load_meta(r)]
    assert len(ranked) == 1 and [a["rank"] for a in ranked[0]] == [1, 2, 3, 4, 5]
    names = [i["name"].rsplit("!", 1)[1] for i in result.manifest_data["inputs"]]
    assert names == ["기타/기타_질의응답.json", "문어체_WL01/말뭉치_001.json", "PPO/PPO_질문.json", "/RMlabel.json", "/SFTlabel.json", "VL/검증_SFT라벨.json"]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"question": "질문?", "answer01": {"ranking": "first", "contents": "답"}}, "bad_value:ranking"),
        ({"question": "질문?", "answer01": {"ranking": 0, "contents": "답"}}, "bad_value:ranking"),  # 1 = best
        ({"question": "질문?", "answer01": {"ranking": "-2", "contents": "답"}}, "bad_value:ranking"),
        ({"question": "질문?", "answer01": {"ranking": 1, "contents": ""}, "answer02": None}, "no_answer"),
        ({"question": "질문?", "answer01": "답"}, "bad_type:answer01"),
        ([1, 2], "bad_type:record"),
    ],
)
def test_broken_rm_records_are_rejected_with_a_reason(record, reason):
    from kodolly.converters.aihub import CONVERTER
    from kodolly.io.readers import Location

    items = list(CONVERTER.convert(record, Location("x.json", 0), CONVERTER.context()))
    assert [i.reason for i in items] == [reason]


def test_inspect_names_aihub_for_a_label_zip():
    found = kodolly.inspect_file(SPLIT)
    assert found.converter == "aihub"
    assert found.row["id"] == "b7e2d9a0-0001-4f2b-8c3d-000000000001"
