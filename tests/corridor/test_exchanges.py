"""ShareGPT's bulk paths give the record path's bytes: the rows of a piece built as Arrow columns
(corridor/exchanges.py, each turn normalised once) and JSON Lines parsed by pyarrow.json into
conversations (``sharegpt.conversations_of``), on JSONL byte ranges and JSON array item ranges, at
1 and 2 workers and inline; records of another shape fall back to the record path."""

from __future__ import annotations

import unicodedata

import orjson
import pytest

import kodolly
from kodolly.converters import sharegpt
from kodolly.corridor import exchanges, execute, make_spec
from support import output_files, record_fast_path

ZWSP = "\u200b"


def _c(*turns, **extra):
    return {**extra, "conversations": [{"from": f, "value": v} for f, v in turns]}


RECORDS = [
    _c(("system", "당신은 친절한 비서입니다."), ("human", "서울의  인구는?\r\n알려 줘."), ("gpt", "약 940만 명입니다.\r\n"),
       ("human", "부산은?"), ("gpt", "약 330만 명입니다."), id="c1"),
    _c(("human", unicodedata.normalize("NFD", "한글 자모로 쓴 질문")), ("gpt", "답입니다.  끝."), id=7),  # an int id, NFD, two spaces
    _c(("human", "첫 질문"), ("human", "이어서 묻습니다"), ("gpt", "합쳐진 질문에 답합니다."), ("gpt", "   ")),  # merged, no id
    _c(("gpt", "안녕하세요! 무엇을 도와드릴까요?"), ("human", "김치찌개 끓이는 법"), ("gpt", "김치를 볶습니다."), id="lead"),
    _c(("human", ZWSP), ("gpt", "보이지 않는 질문에 답합니다."), ("human", "다음"), ("gpt", "네."), id="zw"),  # empty once normalised
    _c(("human", "질문"), ("gpt", ZWSP + ZWSP), ("human", "또"), ("gpt", "답"), id="zwa"),
    _c(("human", "답이 없는 질문"), id="unanswered"),
    _c(("human", "질문"), ("gpt", "답"), ("human", "마지막 질문은 답이 없다"), id="tail"),
    _c(("robot", "삐빅"), ("gpt", "답"), id="robot"),  # unknown_role: the reject's raw is the record
    _c(id="empty"),  # empty_conversation
    _c(("human", "  "), ("gpt", "빈 질문"), id="blank"),  # empty_turn
    _c(("system", "규칙" * 20), *[(r, f"{r} 턴 {i} " + "가나다 " * 8) for i in range(6) for r in ("human", "gpt")], id="long"),
    _c(("human", "문서 " * 40), ("gpt", "긴 답 " * 30), ("human", "요약은?"), ("gpt", "짧게."), id="wide"),
    _c(("human", "null 값"), ("gpt", None), ("gpt", "둘째 답"), id="null"),
    _c(("human", "서울의  인구는?\r\n알려 줘."), ("gpt", "약 940만 명입니다.\r\n"), id="c1-again"),  # a duplicate once normalised
]
OTHER = [
    {"id": "m1", "messages": [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "반가워요"}]},
    {"id": "x1", "conversations": [{"from": "human", "value": "추가 키", "markdown": "x"}, {"from": "gpt", "value": "네"}]},
]
OPTIONS = [None, {"max_context_chars": 60}, {"max_context_chars": 15}, {"turns": "last"}, {"turns": "first", "max_context_chars": 0}]


def _jsonl(path, records) -> None:
    lines = [orjson.dumps(r) for r in records]
    lines.insert(3, b"")  # a blank line: line numbers still those of the record path
    path.write_bytes(b"\n".join(lines) + b"\n")


def _array(path, records) -> None:
    path.write_bytes(b"[\n" + b",\n".join(orjson.dumps(r) for r in records) + b"\n]\n")


def _files(src, out, options, engine, workers, category=None, shard_bytes=400):
    out.parent.mkdir(parents=True)
    group = kodolly.InputGroup([src], "sharegpt", options, category=category)
    spec = make_spec([], None, out, groups=[group], engine=engine, workers=workers, engine_options={"shard_bytes": shard_bytes})
    execute(spec)
    return output_files(out)


def _record_path(monkeypatch):
    monkeypatch.setattr(exchanges, "convert_lines", lambda *args, **kwargs: None)
    monkeypatch.setattr(exchanges, "piece_for", lambda *args, **kwargs: None)


def _spy(monkeypatch):
    return record_fast_path(monkeypatch, exchanges, "convert_lines")


@pytest.mark.parametrize("write", [_jsonl, _array], ids=["jsonl", "array"])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_the_bulk_paths_give_the_record_paths_bytes(write, options, tmp_path, monkeypatch):
    src = tmp_path / ("data.jsonl" if write is _jsonl else "data.json")
    write(src, RECORDS * 2 + OTHER + RECORDS)
    made = _spy(monkeypatch)
    fast = {(engine, workers): _files(src, tmp_path / f"{engine}{workers}" / "out.parquet", options, engine, workers)
            for engine, workers in [("inline", 1), ("processes", 1), ("processes", 2)]}
    assert True in made and False in made  # plain ranges parsed column-wise; the ones with OTHER records not
    monkeypatch.undo()
    _record_path(monkeypatch)
    slow = _files(src, tmp_path / "records" / "out.parquet", options, "inline", 1)
    for key, files in fast.items():
        assert files == slow, key
    rejects = [orjson.loads(line) for line in slow["out.rejects.jsonl"].splitlines()]
    reasons = {r["reason"] for r in rejects}
    if options is None:
        assert {"empty_field:instruction", "empty_field:response", "unknown_role:robot", "empty_conversation",
                "empty_turn", "unanswered_turn", "no_assistant_turn", "duplicate_of:c1:0", "duplicate_of:lead:0"} <= reasons
        robot = next(r for r in rejects if r["reason"] == "unknown_role:robot")
        assert robot["raw"] == RECORDS[8]  # loaded from its line


def test_one_big_range_category_override_and_small_pieces(tmp_path, monkeypatch):
    src = tmp_path / "data.jsonl"
    _jsonl(src, RECORDS * 40)
    from kodolly.corridor import convert

    monkeypatch.setattr(convert, "PIECE_ROWS", 7)
    fast = _files(src, tmp_path / "fast" / "out.parquet", {"max_context_chars": 60}, "inline", 1, "creative_writing", 1 << 20)
    _record_path(monkeypatch)
    slow = _files(src, tmp_path / "slow" / "out.parquet", {"max_context_chars": 60}, "inline", 1, "creative_writing", 1 << 20)
    assert fast == slow
    rows = kodolly.read_rows(tmp_path / "fast" / "out.parquet").to_pylist()
    assert {r["category"] for r in rows} == {"creative_writing"}
    row = next(r for r in rows if r["id"] == "c1:1")
    assert row["context"] == "시스템: 당신은 친절한 비서입니다.\n\n(앞의 대화 1개 생략)\n\n어시스턴트: 약 940만 명입니다."
    assert row["messages"][0] == {"role": "system", "content": "당신은 친절한 비서입니다."}


def test_a_generated_file_gives_the_record_paths_bytes(tmp_path, monkeypatch):
    import random

    from benchmarks.generate import sharegpt_records

    src = tmp_path / "gen.jsonl"
    records = list(sharegpt_records(3000, seed=5))
    random.Random(1).shuffle(records)
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    made = _spy(monkeypatch)
    fast = [_files(src, tmp_path / f"f{w}" / "out.parquet", None, engine, w, shard_bytes=200_000)
            for engine, w in [("inline", 1), ("processes", 2)]]
    assert made and all(made)
    monkeypatch.undo()
    _record_path(monkeypatch)
    slow = _files(src, tmp_path / "slow" / "out.parquet", None, "inline", 1, shard_bytes=200_000)
    assert fast == [slow, slow]


def test_invalid_utf8_goes_record_by_record(tmp_path, monkeypatch):
    src = tmp_path / "bad.jsonl"
    good = [orjson.dumps(r) for r in RECORDS[:4]]
    src.write_bytes(b"\n".join(good[:2] + [b'{"id": "b", "conversations": [{"from": "human", "value": "\xff\xfe"}, {"from": "gpt", "value": "x"}]}'] + good[2:]) + b"\n")
    made = _spy(monkeypatch)
    fast = _files(src, tmp_path / "fast" / "out.parquet", None, "inline", 1, shard_bytes=1 << 20)
    assert made == [False]
    monkeypatch.undo()
    _record_path(monkeypatch)
    assert _files(src, tmp_path / "slow" / "out.parquet", None, "inline", 1, shard_bytes=1 << 20) == fast
    rejects = [orjson.loads(line) for line in fast["out.rejects.jsonl"].splitlines()]
    assert [r["line"] for r in rejects] == [3]  # the bad line, as the record path rejects it


def test_python_whitespace_is_what_str_strip_removes():
    assert set(sharegpt.PY_SPACES) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


def test_transcript_size_is_the_transcripts_length():
    from kodolly.turns import paragraph, transcript, transcript_size

    msgs = [{"role": "system", "content": "규칙"}, {"role": "user", "content": "질문 하나"}, {"role": "assistant", "content": "답"}]
    for k in range(len(msgs) + 1):
        for dropped in (0, 1, 12):
            kept = msgs[:k]
            assert transcript_size([len(paragraph(m["role"], m["content"])) for m in kept], dropped) == len(transcript(kept, dropped))
