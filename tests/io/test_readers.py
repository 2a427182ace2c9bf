"""Bad and oddly encoded input: every case ends in the rows, the rejects or a clear run error."""

from __future__ import annotations

import pytest

import kodolly
from support import FIXTURES, convert_to_parquet

B = FIXTURES / "bad"
E = FIXTURES / "encodings"


def test_truncated_json_array_keeps_what_parsed_and_rejects_the_rest(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, B / "truncated.json", "alpaca")
    assert [r["instruction"] for r in rows] == ["첫 질문"]
    assert [(r["reason"], r["index"]) for r in rejects] == [("bad_json", 1)]
    assert rejects[0]["detail"].startswith("item 1: unexpected end of data")
    assert rejects[0]["raw"] == (B / "truncated.json").read_text(encoding="utf-8").split("},", 1)[1].strip()


def test_bad_line_in_the_middle_of_jsonl(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, B / "bad_line.jsonl", "alpaca")
    assert [r["instruction"] for r in rows] == ["좋은 줄 하나", "좋은 줄 둘"]
    assert [(r["reason"], r["line"], r["raw"]) for r in rejects] == [
        ("bad_json", 2, '{"instruction": "깨진 줄", "output": "답')
    ]


def test_wrong_types_and_null_fields(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, B / "wrong_types.jsonl", "alpaca")
    assert [(r["instruction"], r["response"]) for r in rows] == [("숫자 답", "42")]
    assert [(r["reason"], r["line"]) for r in rejects] == [
        ("bad_type:instruction", 1),
        ("missing_field:output", 3),
        ("missing_field:instruction", 4),
        ("bad_type:record", 5),
        ("bad_type:input", 6),
    ]


def test_invalid_utf8_line_is_rejected_not_mangled(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, B / "invalid_utf8.jsonl", "alpaca")
    assert [r["instruction"] for r in rows] == ["정상 줄", "다음 줄"]
    assert [(r["reason"], r["line"]) for r in rejects] == [("bad_encoding", 2)]


def test_nul_bytes_escaped_are_removed_raw_are_bad_json(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, B / "nul_bytes.jsonl", "alpaca")
    assert [(r["instruction"], r["response"]) for r in rows] == [("NUL 이스케이프 포함", "답변")]
    assert [(r["reason"], r["line"]) for r in rejects] == [("bad_json", 2)]


def test_empty_file_is_rejected_as_empty_file(tmp_path):
    rows, rejects, _ = convert_to_parquet(tmp_path, B / "empty.json", "alpaca")
    assert rows == []
    assert [(r["reason"], r["file"]) for r in rejects] == [("empty_file", str(B / "empty.json"))]


def test_lfs_pointer_stops_the_run_with_a_message(tmp_path):
    with pytest.raises(kodolly.LfsPointerError, match="Git-LFS pointer"):
        kodolly.convert(B / "lfs_pointer.json", "alpaca", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


EXPECTED = [("한국의 수도는 어디인가요?", "서울입니다."), ("김치찌개 끓이는 법", "김치와 돼지고기를 넣고 끓입니다.")]


@pytest.mark.parametrize(
    "name", ["cp949.csv", "utf8_bom.csv", "utf16.jsonl", "utf16_array.json", "cp949_array.json"]
)
def test_encodings_are_detected(tmp_path, name):
    rows, rejects, _ = convert_to_parquet(tmp_path, E / name, "alpaca")
    assert rejects == []
    assert [(r["instruction"], r["response"]) for r in rows] == EXPECTED


def test_csv_lines_are_reported(tmp_path):
    rows, _, _ = convert_to_parquet(tmp_path, E / "cp949.csv", "alpaca")
    import json

    assert [json.loads(r["meta"])["line"] for r in rows] == [2, 3]


def test_nfd_hangul_becomes_nfc(tmp_path):
    rows, _, _ = convert_to_parquet(tmp_path, E / "nfd.jsonl", "alpaca")
    assert (rows[0]["instruction"], rows[0]["response"]) == EXPECTED[0]
    assert rows[0]["instruction"].encode() == "한국의 수도는 어디인가요?".encode()


def test_invisible_characters_and_whitespace(tmp_path):
    rows, _, _ = convert_to_parquet(tmp_path, E / "invisible.jsonl", "alpaca")
    assert (rows[0]["instruction"], rows[0]["context"], rows[0]["response"]) == (
        "제로폭 공백", "", "첫 줄\n\n둘째 줄\n  들여쓰기",
    )


def test_dot_json_file_holding_json_lines(tmp_path):
    path = tmp_path / "lines.json"
    path.write_text('{"instruction": "가", "output": "나"}\n{"instruction": "다", "output": "라"}\n', encoding="utf-8")
    rows = list(kodolly.iter_rows(path, "alpaca"))
    assert [(r["instruction"], r["response"]) for r in rows] == [("가", "나"), ("다", "라")]


def test_csv_row_with_wrong_column_count(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("instruction,input,output\n질문,,답\n질문만\n", encoding="utf-8")
    rows, rejects, _ = convert_to_parquet(tmp_path, path, "alpaca")
    assert [r["instruction"] for r in rows] == ["질문"]
    assert [(r["reason"], r["line"]) for r in rejects] == [("bad_csv_row", 3)]
