"""korquad1: one row per question; every quirk of FORMATS.md "KorQuAD 1.0" against the fixtures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from click.testing import CliRunner

import kodolly
from kodolly import api
from kodolly.cli import cli
from kodolly.converters import Reject
from kodolly.converters.korquad1 import CONVERTER, convert
from kodolly.io.readers import Location
from kodolly.normalize import normalize_text
from kodolly.registry import get_converter
import pytest

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures" / "korquad1"
SAMPLE = FIX / "KorQuAD_v1.0_dev_sample.json"
LOC = Location("test.json", 0)

C0 = (
    "1839년 바그너는 괴테의 파우스트을 처음 읽고 그 내용에 마음이 끌려 이를 소재로 해서 하나의 교향곡을 쓰려는 뜻을 갖는다. "
    "이 시기 바그너는 1838년에 빛 독촉으로 산전수전을 다 걲은 상황이라 좌절과 실망에 가득했으며 메피스토펠레스를 만나는 파우스트의 심경에 공감했다고 한다."
)
C2 = "바그너는 1841년 4월 파리에서 이 서곡을 완성하였다. 초연은 1844년 7월 22일 드레스덴에서 이루어졌으며, 이후 1855년 1월에 개정판이 나왔다."
C3 = "대한민국 헌법은 1948년 7월 12일 제정되어 같은 해 7월 17일 공포되었다."


def _items(record):
    return list(convert(record, LOC, CONVERTER.context()))


def _sample():
    rejects: list[dict] = []
    rows = list(api.iter_rows(SAMPLE, "korquad1", rejects=rejects))
    return rows, rejects


def test_fixture_is_one_ascii_line_without_trailing_newline():
    data = SAMPLE.read_bytes()
    assert data.isascii() and b"\n" not in data and not data.endswith(b"\n")
    assert b"\\ud30c\\uc6b0" in data  # Hangul only as \u escapes


def test_sample_rows_exactly():
    rows, _ = _sample()
    got = [(r["id"], r["instruction"], r["context"], r["response"], r["category"], r["license"]) for r in rows]
    assert got == [
        ("6566495-0-0", "바그너는 괴테의 파우스트를 읽고 무엇을 쓰고자 했는가?", C0, "교향곡", "closed_qa", "CC BY-ND 2.0 KR"),
        ("6566495-0-1", "바그너는 교향곡 작곡을 어디까지 쓴 뒤에 중단했는가?", C0, "1839년", "closed_qa", "CC BY-ND 2.0 KR"),
        ("6566518-0-0", "파우스트 서곡의 초연은 어디에서 이루어졌는가?", C2, "드레스덴", "closed_qa", "CC BY-ND 2.0 KR"),
        ("6332405-0-0", "대한민국 헌법은 언제 공포되었는가?", C3, "7월 17일", "closed_qa", "CC BY-ND 2.0 KR"),
    ]
    assert rows[0]["meta"] == {
        "title": "파우스트 서곡", "title_raw": "파우스트_서곡", "question_id": "6566495-0-0", "paragraph": 0,
        "answer_start": 54, "file": str(SAMPLE), "index": 0,
    }
    assert all(r["source"] == "korquad1" for r in rows)


def test_sample_rejects_exactly():
    _, rejects = _sample()
    got = [(r["reason"], r["part"], r["index"]) for r in rejects]
    assert got == [("answer_not_in_context", "6566518-0-1", 0), ("no_questions", "", 1)]
    # the reject carries the question, not the whole article
    assert rejects[0]["raw"]["id"] == "6566518-0-1" and "paragraphs" not in rejects[0]["raw"]
    assert rejects[1]["raw"] == {"title": "빈_문서", "paragraphs": 1}


def test_key_order_does_not_matter():
    qa_a = {"id": "q", "question": "언제?", "answers": [{"text": "7월 17일", "answer_start": 32}]}
    qa_b = {"answers": [{"answer_start": 32, "text": "7월 17일"}], "question": "언제?", "id": "q"}
    a = _items({"title": "t", "paragraphs": [{"context": C3, "qas": [qa_a]}]})
    b = _items({"paragraphs": [{"qas": [qa_b], "context": C3}], "title": "t"})
    assert a == b and a[0]["response"] == "7월 17일"


def test_empty_qas_yields_nothing_and_an_article_without_questions_one_reject():
    with_question = _items({"title": "t", "paragraphs": [
        {"context": "질문 없는 문단", "qas": []},
        {"context": C3, "qas": [{"id": "q", "question": "언제?", "answers": [{"text": "7월 17일", "answer_start": 32}]}]},
    ]})
    assert [type(i).__name__ for i in with_question] == ["dict"]
    without = _items({"title": "빈_문서", "paragraphs": [{"context": "a", "qas": []}, {"context": "b", "qas": []}]})
    assert without == [Reject("no_questions", "the article has no question", raw={"title": "빈_문서", "paragraphs": 2})]


def test_answer_ending_with_a_space_stays_inside_the_normalised_context():
    rows, _ = _sample()
    row = next(r for r in rows if r["id"] == "6566495-0-1")
    assert row["response"] == "1839년" and row["context"].startswith("1839년 ")
    # also where the space is followed by a line end that normalisation removes
    items = _items({"title": "t", "paragraphs": [{"context": "답은 서울 \n입니다.", "qas": [
        {"id": "q", "question": "어디?", "answers": [{"text": "서울 ", "answer_start": 3}]}]}]})
    assert normalize_text(items[0]["response"]) in normalize_text(items[0]["context"])


def test_title_underscores_become_spaces():
    rows, _ = _sample()
    assert {r["meta"]["title"] for r in rows} == {"파우스트 서곡", "대한민국 헌법"}
    assert rows[-1]["meta"]["title_raw"] == "대한민국_헌법"


def test_answer_not_at_its_offset_but_in_the_context_is_kept_and_marked():
    rows, _ = _sample()
    row = next(r for r in rows if r["id"] == "6566518-0-0")
    assert row["response"] == "드레스덴"
    assert row["meta"]["answer_offset_fixed"] is True
    assert row["meta"]["answer_start"] == C2.index("드레스덴") == 49


def test_nearest_occurrence_is_used_when_the_answer_occurs_twice():
    context = "서울은 수도이다. 부산은 항구이다. 서울은 크다."
    items = _items({"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "q", "question": "?", "answers": [{"text": "서울", "answer_start": 17}]}]}]})
    assert items[0]["meta"]["answer_start"] == 20 and items[0]["meta"]["answer_offset_fixed"] is True


def test_answer_not_in_the_context_is_rejected():
    items = _items({"title": "t", "paragraphs": [{"context": C3, "qas": [
        {"id": "q9", "question": "?", "answers": [{"text": "1987년", "answer_start": 5}]}]}]})
    assert len(items) == 1 and isinstance(items[0], Reject)
    assert (items[0].reason, items[0].part) == ("answer_not_in_context", "q9")


def test_malformed_records_each_get_their_reason():
    rejects: list[dict] = []
    rows = list(api.iter_rows(FIX / "malformed.json", "korquad1", rejects=rejects))
    assert [(r["id"], r["response"], r["meta"]["answer_start"]) for r in rows] == [("m-3", "42", 11)]
    assert [(r["reason"], r["part"], r["index"]) for r in rejects] == [
        ("missing_field:context", "m-0", 0),
        ("missing_field:question", "m-1", 0),
        ("missing_field:answers", "m-2", 0),
        ("empty_field:response", "m-4", 0),
        ("bad_type:question", "1:4", 0),
        ("bad_type:paragraph", "paragraph:2", 0),
        ("missing_field:paragraphs", "", 1),
        ("bad_type:record", "", 2),
    ]


def test_registered_with_entry_point_and_detected():
    assert get_converter("korquad1") is CONVERTER
    assert "korquad1" in [c.name for c in api.formats()]
    found = api.inspect_file(SAMPLE)
    assert found.converter == "korquad1" and found.row["id"] == "6566495-0-0"


def test_cli_formats_inspect_and_convert(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["formats"])
    assert res.exit_code == 0 and "korquad1" in res.output
    res = runner.invoke(cli, ["inspect", str(SAMPLE)])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == f"{SAMPLE}: korquad1"
    out = tmp_path / "kq1.jsonl"
    res = runner.invoke(cli, ["convert", "--from", "korquad1", str(SAMPLE), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "tally OK: read 6 = written 4 + rejected 2" in res.output
    assert len(out.read_text().splitlines()) == 4


def test_end_to_end_tally_and_parquet(tmp_path):
    out = tmp_path / "kq1.parquet"
    result = kodolly.convert([SAMPLE, FIX / "malformed.json"], "korquad1", out)
    table = pq.read_table(out)
    assert table.num_rows == 5 == result.tally.written
    assert result.tally.read == 15 and result.tally.rejected == 10 and result.tally.balanced
    rejects = [orjson.loads(line) for line in result.rejects.read_bytes().splitlines()]
    assert len(rejects) == 10
    manifest = json.loads(result.manifest.read_text())
    assert manifest["counts"]["read"] == 15 and manifest["counts"]["by_reason"]["answer_not_in_context"] == 1


def _generator():
    spec = importlib.util.spec_from_file_location("gen_korquad", ROOT / "benchmarks" / "gen_korquad.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_whole_generated_file_every_response_is_in_its_context(tmp_path):
    gen = _generator()
    doc = gen.korquad1(2000, seed=11)
    src = tmp_path / "KorQuAD_v1.0_train.json"
    gen.write_korquad1(src, doc)
    questions = sum(len(p["qas"]) for a in doc["data"] for p in a["paragraphs"])
    result = kodolly.convert(src, "korquad1", tmp_path / "out.parquet")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert result.tally.balanced and result.tally.read == questions
    assert len(rows) == result.tally.written > 0.98 * questions
    assert set(result.tally.by_reason) <= {"answer_not_in_context"}
    for row in rows:
        assert row["response"] and row["response"] in row["context"], row["id"]


def test_answer_that_cuts_a_decomposed_syllable_is_rejected_after_normalisation():
    import unicodedata

    context = unicodedata.normalize("NFD", "한국의 수도")  # macOS-style decomposed Hangul
    answer = context[:2]  # the jamo of 하, a cut through 한
    items = _items({"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "q", "question": "?", "answers": [{"text": answer, "answer_start": 0}]}]}]})
    assert (items[0].reason, items[0].detail) == ("answer_not_in_context", "the answer is not in the context after normalisation")
    # a whole decomposed word is fine: it becomes the NFC word inside the NFC context
    whole = _items({"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "q", "question": "?", "answers": [{"text": context[:6], "answer_start": 0}]}]}]})
    assert normalize_text(whole[0]["response"]) == "한국" and "한국" in normalize_text(whole[0]["context"])
