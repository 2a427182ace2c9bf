"""kodolly.train.data: rows -> conversational examples, splits, long prompts, DPO layouts."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kodolly.errors import ConfigError
from kodolly.train.data import PromptRenderer, dpo_examples, read_rows_as_dicts, sft_examples, template_kwargs
from tiny_model import THINKING_CHAT_TEMPLATE, build_tokenizer

MARKER = "(답변 종료)"


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("가나다라마바사아자차카타파하 질문답변맥락서울수도어디인가요입니다")


def row(instruction, response, context="", **extra):
    return {"instruction": instruction, "context": context, "response": response, "category": "open_qa", **extra}


def sft(rows, renderer, **kw):
    kw = {"answer_end": None, "max_prompt_tokens": None, "long_prompts": "drop", **kw}
    return sft_examples(rows, renderer, **kw)


def test_sft_rows_become_prompt_completion_conversations(tokenizer):
    renderer = PromptRenderer(tokenizer, system_prompt="친절하게")
    train, validation, report = sft(
        [row("서울은?", "수도입니다.", context="맥락"), row("질문", "답변")], renderer, answer_end=MARKER
    )
    assert train == [
        {
            "prompt": [{"role": "system", "content": "친절하게"}, {"role": "user", "content": "서울은?\n\n맥락"}],
            "completion": [{"role": "assistant", "content": "수도입니다.\n(답변 종료)"}],
        },
        {
            "prompt": [{"role": "system", "content": "친절하게"}, {"role": "user", "content": "질문"}],
            "completion": [{"role": "assistant", "content": "답변\n(답변 종료)"}],
        },
    ]
    assert validation == [] and (report.rows, report.train) == (2, 2)


def test_marker_is_not_doubled(tokenizer):
    train, _, _ = sft([row("질문", "답변\n(답변 종료)")], PromptRenderer(tokenizer), answer_end=MARKER)
    assert train[0]["completion"][0]["content"] == "답변\n(답변 종료)"


def test_split_column_gives_validation_and_leaves_test_out(tokenizer):
    rows = [
        row("가", "나", split="train"), row("다", "라", split="validation"), row("마", "바", split="test"),
        row("사", "아", split=None), row("자", "  ", split="train"), row("차", "카", split="dev"),
    ]
    train, validation, report = sft(rows, PromptRenderer(tokenizer))
    assert [t["prompt"][0]["content"] for t in train] == ["가", "사"]
    assert [v["prompt"][0]["content"] for v in validation] == ["다"]
    assert report.as_dict() == {
        "rows": 6, "train": 2, "validation": 1, "test_ignored": 1, "long_prompts_dropped": 0,
        "long_prompts_cut": 0, "skipped": {"empty_field": 1, "unknown_split:dev": 1},
    }


def test_rows_read_back_from_parquet_with_a_split_column(tokenizer, tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([row("가", "나", split="train"), row("다", "라", split="validation")]), path)
    train, validation, _ = sft(read_rows_as_dicts(str(path)), PromptRenderer(tokenizer))
    assert len(train) == 1 and len(validation) == 1


def test_qwen3_style_template_gets_enable_thinking_false(tokenizer):
    thinking_tok = build_tokenizer("질문답변", THINKING_CHAT_TEMPLATE)
    renderer = PromptRenderer(thinking_tok)
    assert renderer.template_kwargs == {"enable_thinking": False}
    assert renderer.render(renderer.messages("질문")) == "<s><|user|>질문<|assistant|><think></think>"
    train, _, _ = sft([row("질문", "답변")], renderer)
    assert train[0]["chat_template_kwargs"] == {"enable_thinking": False}
    assert PromptRenderer(thinking_tok, thinking=True).render([{"role": "user", "content": "질문"}]) == (
        "<s><|user|>질문<|assistant|>"
    )
    # A template without the switch gets nothing passed.
    assert template_kwargs(tokenizer, False) == {}
    assert "chat_template_kwargs" not in sft([row("질문", "답변")], PromptRenderer(tokenizer))[0][0]


def test_long_prompts_dropped_and_counted(tokenizer):
    renderer = PromptRenderer(tokenizer)
    short, long_ = row("가나", "답"), row("가나다라마바사아자차", "답")
    # "<s><|user|>" + 2 chars + "<|assistant|>" = 5 tokens; the long prompt is 13.
    assert renderer.prompt_tokens(renderer.messages("가나")) == 5
    train, _, report = sft([short, long_], renderer, max_prompt_tokens=8)
    assert [t["prompt"][0]["content"] for t in train] == ["가나"]
    assert (report.long_prompts_dropped, report.long_prompts_cut, report.train) == (1, 0, 1)


def test_long_prompts_cut_keep_the_start_of_the_user_turn(tokenizer):
    renderer = PromptRenderer(tokenizer)
    train, _, report = sft(
        [row("가나다", "답", context="라마바사아자차")], renderer, max_prompt_tokens=10, long_prompts="cut"
    )
    # The instruction comes first, so the context's tail is what goes.
    # <s> <|user|> + 7 characters + <|assistant|> = 10 tokens.
    assert train[0]["prompt"][0]["content"] == "가나다\n\n라마"
    assert renderer.prompt_tokens(train[0]["prompt"]) == 10
    assert (report.long_prompts_cut, report.long_prompts_dropped, report.train) == (1, 0, 1)


def test_cut_that_cannot_fit_drops(tokenizer):
    renderer = PromptRenderer(tokenizer, system_prompt="가나다라마바사아자차카타파하")
    _, _, report = sft([row("가", "답")], renderer, max_prompt_tokens=8, long_prompts="cut")
    assert (report.long_prompts_dropped, report.train) == (1, 0)


def test_sft_needs_dolly_columns(tokenizer):
    with pytest.raises(ConfigError, match="instruction, context, response"):
        sft([{"prompt": "가", "chosen": "나", "rejected": "다"}], PromptRenderer(tokenizer))


def dpo(rows, renderer, **kw):
    kw = {"answer_end": None, "max_prompt_tokens": None, "long_prompts": "drop", **kw}
    return dpo_examples(rows, renderer, **kw)


def test_dpo_kodolly_layout(tokenizer):
    rows = [row("질문", "좋은 답", context="맥락", rejected="나쁜 답", source="s", id="1", split="train")]
    train, _, report = dpo(rows, PromptRenderer(tokenizer), answer_end=MARKER)
    assert train == [
        {
            "prompt": [{"role": "user", "content": "질문\n\n맥락"}],
            "chosen": [{"role": "assistant", "content": "좋은 답\n(답변 종료)"}],
            "rejected": [{"role": "assistant", "content": "나쁜 답\n(답변 종료)"}],
        }
    ]
    assert report.train == 1


def test_dpo_trl_plain_and_conversational_layouts(tokenizer):
    renderer = PromptRenderer(tokenizer, system_prompt="시스템")
    plain = [{"prompt": "질문", "chosen": "좋은 답", "rejected": "나쁜 답", "source": "s", "id": "1"}]
    conversational = [
        {
            "prompt": [{"role": "user", "content": "질문"}],
            "chosen": [{"role": "assistant", "content": "좋은 답"}],
            "rejected": [{"role": "assistant", "content": "나쁜 답"}],
        }
    ]
    expected = {
        "prompt": [{"role": "system", "content": "시스템"}, {"role": "user", "content": "질문"}],
        "chosen": [{"role": "assistant", "content": "좋은 답"}],
        "rejected": [{"role": "assistant", "content": "나쁜 답"}],
    }
    assert dpo(plain, renderer)[0] == [expected]
    assert dpo(conversational, renderer)[0] == [expected]


def test_dpo_rows_without_a_real_pair_are_skipped(tokenizer):
    rows = [row("질문", "답", rejected="답"), row("질문", "답", rejected=""), row("질문", "답", rejected="다른 답")]
    train, _, report = dpo(rows, PromptRenderer(tokenizer))
    assert len(train) == 1 and report.skipped == {"chosen_equals_rejected": 1, "empty_field": 1}


def test_dpo_long_prompt_dropped(tokenizer):
    rows = [row("가나다라마바사아자차", "답", rejected="다른"), row("가", "답", rejected="다른")]
    train, _, report = dpo(rows, PromptRenderer(tokenizer), max_prompt_tokens=8)
    assert len(train) == 1 and report.long_prompts_dropped == 1


def test_dpo_unknown_layout(tokenizer):
    with pytest.raises(ConfigError, match="DPO data needs"):
        dpo([{"question": "가", "answer": "나"}], PromptRenderer(tokenizer))


def test_tokenizer_without_chat_template_is_refused():
    tok = build_tokenizer("가")
    tok.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        PromptRenderer(tok)


def test_rows_read_back_from_jsonl_and_a_datasets_folder(tokenizer, tmp_path):
    from pathlib import Path

    from kodolly import api

    source = Path(__file__).resolve().parents[2] / "fixtures" / "train" / "dolly_ko.jsonl"
    for out in (tmp_path / "rows.jsonl", tmp_path / "rows_folder"):
        api.convert([str(source)], "dolly", str(out))
        train, validation, report = sft(read_rows_as_dicts(str(out)), PromptRenderer(tokenizer))
        assert (report.rows, len(train), len(validation)) == (6, 6, 0)
        assert train[2]["prompt"][0]["content"] == "글에 나온 동물은 무엇인가요?\n\n고양이가 창가에서 잠을 잔다."
