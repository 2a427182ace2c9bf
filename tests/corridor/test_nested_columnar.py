"""KorQuAD articles on the nested columnar path (``Converter.nested``, ``corridor.nested``) give the bytes
the record-by-record path gives: regular articles as columns, irregular ones converted one by one in
between, a range that does not parse against the article type wholly record by record."""

from __future__ import annotations

import json
import unicodedata

import orjson
import pyarrow.parquet as pq
import pytest

from kodolly.corridor import execute, make_spec, nested
from support import output_files, record_fast_path

CTX = "서울은 대한민국의 수도이다. 인구가 많다."


def _q(qid, question, text, start, **extra):  # the id in the question: no two rows are duplicates
    return {"id": qid, "question": f"{question} ({qid.strip()})", "answers": [{"text": text, "answer_start": start}], **extra}


def _article(title, *paragraphs):
    return {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs]}


def _regular(k):
    return _article(f"문서_{k}", (CTX, [_q(f"r{k}-0", "수도는?", "서울", 0), _q(f"r{k}-1", "무엇이 많나?", "인구", 16)]),
                    (f"둘째 문단 {k}.\n\n끝.", [_q(f"r{k}-2", "끝은?", "끝", 8 + len(str(k)))]))


ARTICLES = [
    _regular(0),
    _regular(1),
    _article("빈_문서", (CTX, [])),  # no_questions
    _regular(2),
    _article("자리 틀림", (CTX, [_q("off-0", "수도는?", "서울", 5)])),  # answer found elsewhere (offset fixed)
    _article("없는 답", (CTX, [_q("miss-0", "부산은?", "부산", 0)])),  # answer_not_in_context
    _article("공백 id", (CTX, [_q(" sp-0 ", "수도는?", "서울", 0)])),  # id stripped
    {"title": None, "paragraphs": [None, {"context": CTX, "qas": [_q("np-0", "수도는?", "서울", 0)]}]},  # bad paragraph
    _article("NFD", (unicodedata.normalize("NFD", CTX), [_q("nfd-0", "수도는?", unicodedata.normalize("NFD", "서울"), 0)])),
    _article("두 칸", ("서울은  수도이다.  끝 ", [_q("sp2-0", "수도는?", "수도이다.  끝", 5)])),  # dirty context, answer inside
    _article("빈 답", (CTX, [_q("empty-0", "수도는?", "   ", 0)])),  # empty_field:response
    _article("no_q", (CTX, [{"id": "nq-0", "answers": [{"text": "서울", "answer_start": 0}]}])),  # missing question
    _regular(3),
    _article("두_답", (CTX, [{"id": "two-0", "question": "수도는?",
                             "answers": [{"text": "없음", "answer_start": 0}, {"text": "서울", "answer_start": 0}]}])),
    _regular(4),
]


def _write(path, articles) -> None:
    doc = {"version": "KorQuAD_v1.0_test", "data": articles}
    path.write_bytes(json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode())


def _run(src, out, engine: str, workers: int | None = None) -> dict[str, bytes]:
    out.parent.mkdir()
    spec = make_spec([src], "korquad1", out, engine=engine, workers=workers, engine_options={"shard_bytes": 900})
    result = execute(spec)
    assert [s["kind"] for s in result.manifest_data["shards"]].count("items") > 2
    return output_files(out)


@pytest.fixture
def spied(monkeypatch):
    return record_fast_path(monkeypatch, nested, "convert_nested")


def test_articles_on_the_nested_path_give_the_record_paths_bytes(tmp_path, monkeypatch, spied):
    src = tmp_path / "korquad.json"
    _write(src, ARTICLES)
    files = _run(src, tmp_path / "fast" / "out.parquet", "inline")
    assert spied and all(spied)  # every range took the nested path (irregular articles inside it)
    for n, (engine, workers) in enumerate([("processes", 1), ("processes", 2)]):
        assert _run(src, tmp_path / f"fast{n}" / "out.parquet", engine, workers) == files
    monkeypatch.setattr(nested, "convert_nested", lambda *args, **kwargs: None)
    assert _run(src, tmp_path / "records" / "out.parquet", "inline") == files

    rejects = [orjson.loads(line) for line in files["out.rejects.jsonl"].splitlines()]
    assert [(r["reason"], r["index"], r["part"]) for r in rejects] == [
        ("no_questions", 2, ""), ("answer_not_in_context", 5, "miss-0"), ("bad_type:paragraph", 7, "paragraph:0"),
        ("empty_field:response", 10, "empty-0"), ("missing_field:question", 11, "nq-0")]
    rows = pq.read_table(tmp_path / "fast" / "out.parquet").to_pylist()
    assert [r["id"] for r in rows] == [
        "r0-0", "r0-1", "r0-2", "r1-0", "r1-1", "r1-2", "r2-0", "r2-1", "r2-2", "off-0", "sp-0", "np-0", "nfd-0",
        "sp2-0", "r3-0", "r3-1", "r3-2", "two-0", "r4-0", "r4-1", "r4-2"]
    first = rows[0]
    assert (first["instruction"], first["context"], first["response"], first["category"]) == ("수도는? (r0-0)", CTX, "서울", "closed_qa")
    assert orjson.loads(first["meta"]) == {"title": "문서 0", "title_raw": "문서_0", "question_id": "r0-0", "paragraph": 0,
                                           "answer_start": 0, "file": str(src), "index": 0}
    assert orjson.loads(rows[2]["meta"])["paragraph"] == 1
    assert rows[13]["context"] == "서울은 수도이다. 끝" and rows[13]["response"] == "수도이다. 끝"


def test_a_range_that_does_not_fit_the_article_type_goes_record_by_record(tmp_path, monkeypatch, spied):
    src = tmp_path / "korquad.json"
    odd = _article("숫자 시작", (CTX, [_q("num-0", "수도는?", "서울", "0")]))  # answer_start as text
    _write(src, [_regular(0), odd, _regular(1), _regular(2), _regular(3)])
    files = _run(src, tmp_path / "fast" / "out.parquet", "inline")
    assert False in spied and True in spied
    monkeypatch.setattr(nested, "convert_nested", lambda *args, **kwargs: None)
    assert _run(src, tmp_path / "records" / "out.parquet", "inline") == files
    rows = pq.read_table(tmp_path / "fast" / "out.parquet").to_pylist()
    assert [r["id"] for r in rows][3] == "num-0"
