"""sharegpt / kovicuna: one row per user->assistant exchange; the documented multi-turn rule."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

import kodolly
from kodolly import api
from kodolly.cli import cli
from kodolly.converters import Reject
from kodolly.converters.sharegpt import CONVERTER, convert
from kodolly.io.readers import Location
from kodolly.registry import get_converter
import pytest

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "sharegpt"
ARRAY = FIX / "ko_dataset.json"
JSONL = FIX / "ko_dataset.jsonl"
MESSAGES = FIX / "openai_messages.jsonl"
LOC = Location("t.json", 4)


def _run(path, **options):
    rejects: list[dict] = []
    rows = {r["id"]: r for r in api.iter_rows(path, "kovicuna", rejects=rejects, options=options or None)}
    return rows, rejects


def _items(record, **options):
    return list(convert(record, LOC, CONVERTER.context(options)))


def _irc(row):
    return row["instruction"], row["response"], row["context"]


def test_human_is_the_instruction_and_gpt_the_response_never_the_reverse():
    rows, _ = _run(ARRAY)
    row = rows["QWJhYvA_0:0"]
    assert _irc(row) == (
        "파이썬에서 리스트를 정렬하는 방법을 알려줘.\n예시도 보여줘.",
        "`sorted()` 함수나 `list.sort()` 메서드를 쓰면 됩니다.\n\n```python\nnums = [3, 1, 2]\nnums.sort()\n```",
        "",
    )
    assert "\r" not in row["instruction"] + row["response"]  # \r\n normalised
    assert row["meta"] == {"conversation_id": "QWJhYvA_0", "turn": 0, "exchanges": 2, "file": str(ARRAY), "index": 0}
    assert (row["category"], row["source"], row["license"]) == ("open_qa", "sharegpt", "CC BY 2.0 KR; OpenAI terms")


def test_later_exchanges_carry_the_transcript_in_context():
    rows, _ = _run(ARRAY)
    assert _irc(rows["QWJhYvA_0:1"]) == (
        "내림차순은?",
        "`reverse=True`를 넘기면 됩니다.",
        "사용자: 파이썬에서 리스트를 정렬하는 방법을 알려줘.\n예시도 보여줘.\n\n"
        "어시스턴트: `sorted()` 함수나 `list.sort()` 메서드를 쓰면 됩니다.\n\n```python\nnums = [3, 1, 2]\nnums.sort()\n```",
    )


def test_conversation_starting_with_the_assistant():
    rows, _ = _run(ARRAY)
    assert _irc(rows["i6IyJda_0:0"]) == (
        "김치찌개 끓이는 법 알려줘.", "김치와 돼지고기를 볶은 뒤 물을 붓고 끓입니다.", "어시스턴트: 안녕하세요! 무엇을 도와드릴까요?",
    )


def test_repeated_role_is_merged_with_a_blank_line():
    rows, _ = _run(ARRAY)
    assert _irc(rows["UkVQZWF_0:0"]) == (
        "다음 문장을 영어로 번역해 줘.\n\n나는 학교에 간다.",
        "I go to school.\n\n다른 표현으로는 \"I'm going to school.\"도 있습니다.",
        "",
    )


def test_empty_turns():
    rows, rejects = _run(ARRAY)
    # exchange 0 has an empty answer -> empty_turn; exchange 1's empty "   \r\n" turn is dropped from the
    # merge; the trailing empty human turn is dropped without a reject
    assert _irc(rows["ZW1wdHk_0:1"]) == ("두 번째 질문입니다.", "두 번째 답입니다.", "")
    assert "ZW1wdHk_0:0" not in rows
    empty = [r for r in rejects if r["index"] == 3]
    assert [(r["reason"], r["part"]) for r in empty] == [("empty_turn", "0")]
    assert empty[0]["raw"] == {"id": "ZW1wdHk_0", "turn": 0, "user": "첫 번째 질문입니다.", "assistant": ""}


def test_system_turns_and_other_role_names():
    rows, _ = _run(ARRAY)
    assert _irc(rows["c3lzdGVt_0:0"]) == ("서울의 인구는?", "약 940만 명입니다.", "시스템: 당신은 친절한 한국어 비서입니다.")
    assert _irc(rows["c3lzdGVt_0:1"]) == (
        "부산은?", "약 330만 명입니다.",
        "시스템: 당신은 친절한 한국어 비서입니다.\n\n사용자: 서울의 인구는?\n\n어시스턴트: 약 940만 명입니다.",
    )


def test_long_pasted_document_is_kept_whole():
    rows, _ = _run(ARRAY)
    instruction = rows["bG9uZw_0:0"]["instruction"]
    assert instruction.startswith("다음 계약서를 요약해 줘.\n\n1. 이 계약서의 제1조는")
    assert instruction.endswith("60. 이 계약서의 제60조는 갑과 을의 권리와 의무를 정한다. 을은 갑에게 매월 말일까지 보고서를 제출하여야 한다.")
    assert instruction.count("\n") == 61 and len(instruction) > 3000


def test_array_rows_and_rejects_exactly():
    rows, rejects = _run(ARRAY)
    assert list(rows) == [
        "QWJhYvA_0:0", "QWJhYvA_0:1", "i6IyJda_0:0", "UkVQZWF_0:0", "ZW1wdHk_0:1",
        "c3lzdGVt_0:0", "c3lzdGVt_0:1", "bG9uZw_0:0", "dHJhaWw_0:0",
    ]
    assert [(r["reason"], r["part"], r["index"]) for r in rejects] == [
        ("empty_turn", "0", 3),
        ("no_assistant_turn", "", 5),
        ("unknown_role:tool", "", 6),
        ("unanswered_turn", "turn:2", 8),
        ("bad_type:turn", "", 9),
        ("empty_conversation", "", 10),
        ("empty_conversation", "", 11),
        ("missing_field:from", "", 12),
        ("bad_type:value", "", 13),
    ]


def test_jsonl_with_a_bad_line_and_capitalised_roles():
    rows, rejects = _run(JSONL)
    assert [(_irc(r), r["meta"]["line"]) for r in rows.values()] == [
        (("JSONL 한 줄짜리 대화", "네, 한 줄입니다.", ""), 1),
        (("대문자 역할 이름", "대소문자는 가리지 않습니다.", ""), 3),
    ]
    assert [(r["reason"], r["line"]) for r in rejects] == [("bad_json", 2)]


def test_openai_messages_shape():
    rows, rejects = _run(MESSAGES)
    assert list(rows) == ["openai_messages.jsonl:0:0", "openai_messages.jsonl:0:1"]
    assert _irc(rows["openai_messages.jsonl:0:0"]) == ("하늘은 왜 파란가요?\n짧게.", "레일리 산란 때문입니다.", "시스템: You answer in Korean.")
    assert _irc(rows["openai_messages.jsonl:0:1"]) == (
        "노을은요?", "빛이 대기를 더 길게 지나며 파란빛이 흩어지기 때문입니다.",
        "시스템: You answer in Korean.\n\n사용자: 하늘은 왜 파란가요?\n짧게.\n\n어시스턴트: 레일리 산란 때문입니다.",
    )
    assert [(r["reason"], r["line"]) for r in rejects] == [("no_user_turn", 2)]


def test_first_turn_only():
    rows, rejects = _run(ARRAY, first_turn_only=True)
    assert list(rows) == ["QWJhYvA_0:0", "i6IyJda_0:0", "UkVQZWF_0:0", "c3lzdGVt_0:0", "bG9uZw_0:0", "dHJhaWw_0:0"]
    assert rows["c3lzdGVt_0:0"]["context"] == "시스템: 당신은 친절한 한국어 비서입니다."
    reasons = [r["reason"] for r in rejects]
    assert "unanswered_turn" not in reasons and reasons.count("empty_turn") == 1


def test_conversation_without_id_gets_a_derived_one():
    items = _items({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]})
    assert items[0]["id"] == "t.json:4:0" and items[0]["meta"]["conversation_id"] == "t.json:4"


def test_user_system_user_leaves_the_first_question_unanswered():
    items = _items({"id": "x", "conversations": [
        {"from": "human", "value": "q1"}, {"from": "system", "value": "s"}, {"from": "human", "value": "q2"},
        {"from": "gpt", "value": "a2"}]})
    assert items[0]["instruction"] == "q2" and items[0]["context"] == "시스템: s\n\n사용자: q1"
    assert items[1] == Reject("unanswered_turn", "turn 0: a user turn with no assistant turn after it", part="turn:0", raw={"id": "x", "user": "q1"})


def test_missing_or_bad_conversations():
    assert [i.reason for i in _items({"id": "x"})] == ["missing_field:conversations"]
    assert [i.reason for i in _items({"conversations": "hi"})] == ["bad_type:conversations"]
    assert [i.reason for i in _items({"messages": [{"role": "user", "content": [{"type": "image"}]}]})] == ["bad_type:content"]
    assert [i.reason for i in convert("text", LOC, CONVERTER.context())] == ["bad_type:record"]


def test_registered_with_alias_detected_and_cli(tmp_path):
    assert get_converter("kovicuna") is get_converter("sharegpt") is CONVERTER
    assert api.inspect_file(ARRAY).converter == "sharegpt"
    assert api.inspect_file(MESSAGES).converter == "sharegpt"
    runner = CliRunner()
    res = runner.invoke(cli, ["formats", "-v"])
    assert res.exit_code == 0 and "sharegpt" in res.output and "aliases: kovicuna" in res.output
    out = tmp_path / "sg.jsonl"
    res = runner.invoke(cli, ["convert", "--from", "kovicuna", str(ARRAY), "-o", str(out), "-O", "first_turn_only=true"])
    assert res.exit_code == 0, res.output
    assert "tally OK: read 14 = written 6 + rejected 8" in res.output


def test_end_to_end_tally_and_parquet(tmp_path):
    out = tmp_path / "sg.parquet"
    result = kodolly.convert([ARRAY, JSONL, MESSAGES], "sharegpt", out)
    table = pq.read_table(out)
    assert table.num_rows == 13 == result.tally.written
    assert (result.tally.read, result.tally.rejected, result.tally.balanced) == (24, 11, True)
    assert result.tally.by_reason["empty_turn"] == 1 and result.tally.by_reason["bad_json"] == 1
    rejects = [json.loads(line) for line in result.rejects.read_text().splitlines()]
    assert len(rejects) == 11
    assert all(row["instruction"] and row["response"] for row in table.to_pylist())


def test_first_turn_only_must_be_a_boolean(tmp_path):
    res = CliRunner().invoke(cli, ["convert", "--from", "sharegpt", str(ARRAY), "-o", str(tmp_path / "x.parquet"), "-O", "first_turn_only=yes"])
    assert res.exit_code == 2 and "first_turn_only must be true or false, not 'yes'" in res.output


# --- max_context_chars: long transcripts keep the opening system turn and the most recent whole turns ---

LONG = FIX / "long_conversation.jsonl"
SYSTEM = "시스템: 당신은 계약서 검토를 돕는 비서입니다."
DOC = "다음 계약서를 읽어 줘.\n" + "\n".join(f"제{i}조 갑은 을에게 매월 보고서를 제출한다." for i in range(1, 6))


def _meta(row):
    return {k: v for k, v in row["meta"].items() if k not in ("file", "index", "line")}


def test_context_within_the_bound_is_the_whole_transcript():
    rows, rejects = _run(LONG)  # default bound 8000: nothing is cut
    assert rejects == []
    assert rows["bG9uZ2N0eA_0:2"]["context"] == (
        f"{SYSTEM}\n\n사용자: {DOC}\n\n어시스턴트: 다섯 개 조항 모두 보고 의무를 정합니다.\n\n"
        "사용자: 보고 주기는?\n\n어시스턴트: 매월입니다."
    )
    assert all("context_turns_dropped" not in r["meta"] for r in rows.values())


def test_long_context_keeps_the_system_turn_and_the_latest_turns():
    rows, rejects = _run(LONG, max_context_chars=120)
    assert rejects == []
    assert [(r["id"], r["context"], _meta(r)) for r in rows.values()] == [
        ("bG9uZ2N0eA_0:0", SYSTEM, {"conversation_id": "bG9uZ2N0eA_0", "turn": 0, "exchanges": 3}),
        ("bG9uZ2N0eA_0:1",
         f"{SYSTEM}\n\n(앞의 대화 1개 생략)\n\n어시스턴트: 다섯 개 조항 모두 보고 의무를 정합니다.",
         {"conversation_id": "bG9uZ2N0eA_0", "turn": 1, "exchanges": 3, "context_turns_dropped": 1}),
        ("bG9uZ2N0eA_0:2",
         f"{SYSTEM}\n\n(앞의 대화 1개 생략)\n\n어시스턴트: 다섯 개 조항 모두 보고 의무를 정합니다.\n\n"
         "사용자: 보고 주기는?\n\n어시스턴트: 매월입니다.",
         {"conversation_id": "bG9uZ2N0eA_0", "turn": 2, "exchanges": 3, "context_turns_dropped": 1}),
        ("bm9TeXM_0:0", "", {"conversation_id": "bm9TeXM_0", "turn": 0, "exchanges": 2}),
        ("bm9TeXM_0:1",
         "사용자: 첫 질문: 김치의 역사를 길게 설명해 줘. 첫 질문: 김치의 역사를 길게 설명해 줘. 첫 질문: 김치의 역사를 길게 설명해 줘.\n\n"
         "어시스턴트: 김치는 삼국 시대부터 먹었다고 알려져 있습니다.",
         {"conversation_id": "bm9TeXM_0", "turn": 1, "exchanges": 2}),
    ]
    # the instruction (the pasted document) and the response are never cut
    assert rows["bG9uZ2N0eA_0:0"]["instruction"] == DOC
    assert all(len(r["context"]) <= 120 for r in rows.values())


def test_tighter_bound_drops_more_turns_and_may_leave_only_the_marker():
    rows, _ = _run(LONG, max_context_chars=60)
    assert [(r["context"], r["meta"].get("context_turns_dropped")) for r in rows.values()] == [
        (SYSTEM, None),
        (f"{SYSTEM}\n\n(앞의 대화 2개 생략)", 2),  # the latest turn (44 chars) does not fit beside the system turn
        (f"{SYSTEM}\n\n(앞의 대화 3개 생략)\n\n어시스턴트: 매월입니다.", 3),
        ("", None),
        # no system turn: the latest turn that fits, after the marker
        ("(앞의 대화 1개 생략)\n\n어시스턴트: 김치는 삼국 시대부터 먹었다고 알려져 있습니다.", 1),
    ]
    # a bound smaller than the system turn: it is dropped (counted) like any other turn
    rows, _ = _run(LONG, max_context_chars=20)
    assert [(r["context"], r["meta"].get("context_turns_dropped")) for r in rows.values()] == [
        ("(앞의 대화 1개 생략)", 1), ("(앞의 대화 3개 생략)", 3), ("(앞의 대화 5개 생략)", 5),
        ("", None), ("(앞의 대화 2개 생략)", 2),
    ]


def test_default_bound_is_8000_and_zero_means_no_bound():
    assert CONVERTER.options["max_context_chars"] == 8000
    pasted = "가나다라마바사아자차. " * 800  # 9600 characters
    record = {"id": "big", "conversations": [
        {"from": "human", "value": pasted}, {"from": "gpt", "value": "요약했습니다."},
        {"from": "human", "value": "한 줄로?"}, {"from": "gpt", "value": "한 줄 요약입니다."},
    ]}
    items = _items(record)
    assert items[1]["context"] == "(앞의 대화 1개 생략)\n\n어시스턴트: 요약했습니다."
    assert items[1]["meta"] == {"conversation_id": "big", "turn": 1, "exchanges": 2, "context_turns_dropped": 1}
    whole = _items(record, max_context_chars=0)
    assert whole[1]["context"] == f"사용자: {pasted}\n\n어시스턴트: 요약했습니다."
    assert "context_turns_dropped" not in whole[1]["meta"]


def test_max_context_chars_from_the_cli_and_bad_values(tmp_path):
    out = tmp_path / "sg.jsonl"
    res = CliRunner().invoke(cli, ["convert", "--from", "sharegpt", str(LONG), "-o", str(out), "-O", "max_context_chars=60"])
    assert res.exit_code == 0, res.output
    assert "tally OK: read 5 = written 5 + rejected 0" in res.output
    metas = [json.loads(json.loads(line)["meta"]).get("context_turns_dropped") for line in out.read_text().splitlines()]
    assert metas == [None, 2, 3, None, 1]
    res = CliRunner().invoke(cli, ["convert", "--from", "sharegpt", str(LONG), "-o", str(tmp_path / "x.parquet"), "-O", "max_context_chars=-5"])
    assert res.exit_code == 2 and "max_context_chars must be a whole number (0 = no bound), not -5" in res.output


# --- messages: the earlier turns as data; -O turns=each|last|first (issue 16) ---

SYSTEM_CONV = FIX / "kovicuna_system.json"
SYS = {"role": "system", "content": "당신은 친절한 한국어 비서입니다."}
EXCHANGES = [
    ("서울의 인구는?", "약 940만 명입니다."),
    ("부산은?", "약 330만 명입니다."),
    ("두 도시 사이의 거리는 얼마나 돼?", "직선 거리로 약 325km입니다."),
    ("KTX로는 얼마나 걸려?", "KTX로 약 2시간 30분 걸립니다."),
]


def _source_turns(n):
    """The source's turns before exchange n, as messages."""
    out = [SYS]
    for user, assistant in EXCHANGES[:n]:
        out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return out


def test_each_exchange_carries_the_source_turns_before_it():
    rows, rejects = _run(SYSTEM_CONV)
    assert rejects == []
    assert list(rows) == [f"kovicuna-sys-1:{k}" for k in range(4)]
    for k, row in enumerate(rows.values()):
        assert (row["instruction"], row["response"]) == EXCHANGES[k]
        assert row["messages"] == _source_turns(k)
        assert row["meta"]["conversation_id"] == "kovicuna-sys-1"
    assert rows["kovicuna-sys-1:1"]["context"] == "시스템: 당신은 친절한 한국어 비서입니다.\n\n사용자: 서울의 인구는?\n\n어시스턴트: 약 940만 명입니다."


def test_context_is_the_transcript_of_messages_even_when_cut():
    from kodolly.turns import transcript

    for options in ({}, {"max_context_chars": 120}, {"max_context_chars": 60}, {"max_context_chars": 20}):
        for path in (ARRAY, LONG, SYSTEM_CONV, MESSAGES):
            rows, _ = _run(path, **options)
            for row in rows.values():
                assert row["context"] == transcript(row["messages"], row["meta"].get("context_turns_dropped", 0))
    rows, _ = _run(LONG, max_context_chars=120)
    cut = rows["bG9uZ2N0eA_0:1"]
    assert cut["meta"]["context_turns_dropped"] == 1 and cut["messages"][0]["role"] == "system"
    assert cut["context"].split("\n\n")[1] == "(앞의 대화 1개 생략)"


def test_turns_last_is_one_row_per_conversation_ending_at_its_last_answer():
    rows, rejects = _run(SYSTEM_CONV, turns="last")
    assert rejects == []
    assert list(rows) == ["kovicuna-sys-1:3"]
    row = rows["kovicuna-sys-1:3"]
    assert (row["instruction"], row["response"], row["messages"]) == (*EXCHANGES[3], _source_turns(3))
    # an empty last exchange is rejected; the row ends at the last answered one
    record = {"id": "c", "conversations": [
        {"from": "human", "value": "q0"}, {"from": "gpt", "value": "a0"},
        {"from": "human", "value": "q1"}, {"from": "gpt", "value": "a1"},
        {"from": "human", "value": "q2"}, {"from": "gpt", "value": "  "},
        {"from": "human", "value": "q3?"},
    ]}
    items = _items(record, turns="last")
    assert [i["id"] if isinstance(i, dict) else (i.reason, i.part) for i in items] == [
        "c:1", ("empty_turn", "2"), ("unanswered_turn", "turn:6"),
    ]
    assert items[0]["messages"] == [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}]


def test_turns_first_and_the_older_first_turn_only_agree():
    first = _run(SYSTEM_CONV, turns="first")
    assert first == _run(SYSTEM_CONV, first_turn_only=True)
    rows, _ = first
    assert list(rows) == ["kovicuna-sys-1:0"] and rows["kovicuna-sys-1:0"]["messages"] == [SYS]


def test_bad_turns_values_are_one_line_config_errors(tmp_path):
    res = CliRunner().invoke(cli, ["convert", "--from", "sharegpt", str(SYSTEM_CONV), "-o", str(tmp_path / "x.parquet"), "-O", "turns=all"])
    assert res.exit_code == 2 and "turns must be one of each, last, first, not 'all'" in res.output
    res = CliRunner().invoke(cli, ["convert", "--from", "sharegpt", str(SYSTEM_CONV), "-o", str(tmp_path / "x.parquet"),
                                   "-O", "turns=last", "-O", "first_turn_only=true"])
    assert res.exit_code == 2 and "contradict" in res.output


def test_single_turn_sources_have_no_messages(tmp_path):
    rows, _ = _run(ARRAY)
    assert rows["QWJhYvA_0:0"]["messages"] == []


def test_messages_column_in_every_writer_and_back(tmp_path):
    import datasets

    from kodolly.io.batches import iter_batches
    from kodolly.rows import MESSAGES_TYPE

    expected = [_source_turns(k) for k in range(4)]
    for name in ("rows.parquet", "rows.jsonl", "rows_folder"):
        out = tmp_path / name
        res = CliRunner().invoke(cli, ["convert", "--from", "kovicuna", str(SYSTEM_CONV), "-o", str(out)]
                                 + (["--format", "datasets"] if name.endswith("folder") else []))
        assert res.exit_code == 0, res.output
        table = next(iter_batches(out))
        assert table.schema.field("messages").type == MESSAGES_TYPE
        assert table.column("messages").to_pylist() == expected
        if name.endswith("parquet"):
            assert pq.read_table(out).column("messages").to_pylist() == expected
    import jsonschema

    from kodolly.manifest import load_schema

    schema = load_schema("dolly-row")
    for line in (tmp_path / "rows.jsonl").read_text("utf-8").splitlines():
        jsonschema.validate(json.loads(line), schema)
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "rows.parquet"), split="train")
    assert ds[3]["messages"] == expected[3]
    res = CliRunner().invoke(cli, ["convert", "--from", "kovicuna", str(SYSTEM_CONV), "-o", str(tmp_path / "d.jsonl"), "--dolly-only"])
    assert res.exit_code == 0
    assert set(json.loads((tmp_path / "d.jsonl").read_text().splitlines()[0])) == {"instruction", "context", "response", "category"}
