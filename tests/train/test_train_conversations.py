"""Conversation rows in training: real turns through the chat template, and trl on the conversational exports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import FAST
from tiny_model import build_tiny

CONV = Path(__file__).resolve().parents[2] / "fixtures" / "sharegpt" / "kovicuna_system.json"
SYSTEM = "당신은 친절한 한국어 비서입니다."
ANSWERS = ["약 940만 명입니다.", "약 330만 명입니다.", "직선 거리로 약 325km입니다.", "KTX로 약 2시간 30분 걸립니다."]
TWO_STEPS = {**FAST, "per_device_train_batch_size": 2, "max_steps": 2, "logging_steps": 1}


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny-conv") / "model", CONV.read_text("utf-8") + "Seoul.")


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> Path:
    from kodolly import api

    out = tmp_path_factory.mktemp("conv") / "rows.parquet"
    assert api.convert([CONV], "kovicuna", out).tally.written == 4
    return out


@pytest.fixture(scope="module")
def tokenizer(conv_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(conv_model))


def _examples(rows, tokenizer, **kw):
    from kodolly.train.data import PromptRenderer, read_rows_as_dicts, sft_examples

    renderer = PromptRenderer(tokenizer, system_prompt=kw.pop("system_prompt", None))
    return sft_examples(read_rows_as_dicts(str(rows)), renderer, answer_end=None, max_prompt_tokens=None,
                        long_prompts="drop", **kw)


def test_sft_prompt_is_the_real_turns_and_the_completion_the_final_answer(rows, tokenizer):
    train, _, report = _examples(rows, tokenizer, system_prompt="무시되는 기본 프롬프트")
    assert report.train == 4
    last = train[3]
    assert last["prompt"] == [
        {"role": "system", "content": SYSTEM},  # the row's own system prompt, not the default
        {"role": "user", "content": "서울의 인구는?"}, {"role": "assistant", "content": ANSWERS[0]},
        {"role": "user", "content": "부산은?"}, {"role": "assistant", "content": ANSWERS[1]},
        {"role": "user", "content": "두 도시 사이의 거리는 얼마나 돼?"}, {"role": "assistant", "content": ANSWERS[2]},
        {"role": "user", "content": "KTX로는 얼마나 걸려?"},
    ]
    assert last["completion"] == [{"role": "assistant", "content": ANSWERS[3]}]
    assert "사용자:" not in json.dumps(last, ensure_ascii=False)  # no transcript in the user turn


def test_all_turns_masks_exactly_every_assistant_turn(rows, tokenizer):
    train, _, _ = _examples(rows, tokenizer, loss_on="all-turns")
    last = train[3]
    assert set(last) == {"input_ids", "assistant_masks"}
    ids, mask = last["input_ids"], last["assistant_masks"]
    # the masked tokens, in runs, are the four answers each with the template's end of turn
    runs, current = [], []
    for tok, bit in zip(ids, mask):
        if bit:
            current.append(tok)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    assert [tokenizer.decode(r) for r in runs] == [a + "</s>" for a in ANSWERS]
    assert tokenizer.decode(ids).startswith(f"<s><|system|>{SYSTEM}<|user|>서울의 인구는?")


def _trl_two_steps(kind: str, conv_model: Path, ds, output_dir: Path, **trainer_kw) -> list[float]:
    """trl's own trainer (``sft`` or ``dpo``) for two CPU steps on ``ds``: the losses it logged."""
    import trl
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trainer_cls, config_cls = {"sft": (trl.SFTTrainer, trl.SFTConfig), "dpo": (trl.DPOTrainer, trl.DPOConfig)}[kind]
    trainer = trainer_cls(
        model=AutoModelForCausalLM.from_pretrained(str(conv_model)),
        processing_class=AutoTokenizer.from_pretrained(str(conv_model)),
        train_dataset=ds,
        args=config_cls(output_dir=str(output_dir), use_cpu=True, bf16=False, report_to="none",
                        save_strategy="no", **TWO_STEPS),
        **trainer_kw,
    )
    trainer.train()
    assert trainer.state.global_step == 2
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def test_sft_trainer_on_the_axolotl_messages_export_and_kodolly_all_turns(rows, conv_model, tmp_path):
    import datasets

    from kodolly.export import export
    from kodolly.train import train_sft

    dest = tmp_path / "chat.jsonl"
    export(rows, dest, target="axolotl", style="chat")
    ds = datasets.load_dataset("json", data_files=str(dest), split="train")
    assert [m["role"] for m in ds[3]["messages"]] == ["system"] + ["user", "assistant"] * 4
    assert all(math.isfinite(x) for x in _trl_two_steps("sft", conv_model, ds, tmp_path / "sft"))
    # kodolly's own SFT on the rows, loss on every assistant turn
    result = train_sft(str(rows), str(conv_model), output_dir=str(tmp_path / "k"), loss_on="all-turns",
                       trainer=TWO_STEPS, log=lambda _m: None)
    assert len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)


def test_dpo_trainer_on_the_conversational_pairs(rows, conv_model, tmp_path):
    import datasets
    import pyarrow.parquet as pq
    from transformers import AutoModelForCausalLM

    from kodolly.dpo.output import DpoWriter, layout_schema, make_pair
    from kodolly.train import train_dpo

    table = pq.read_table(rows)
    schema = layout_schema("trl-conversational", table.column_names)
    writer = DpoWriter(tmp_path / "pairs.jsonl", "jsonl", schema)
    writer.write([make_pair(r, r["response"], "Seoul.", "trl-conversational", schema) for r in table.to_pylist()])
    writer.close()
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "pairs.jsonl"), split="train")
    assert ds[3]["prompt"][0] == {"role": "system", "content": SYSTEM} and len(ds[3]["prompt"]) == 8
    losses = _trl_two_steps("dpo", conv_model, ds, tmp_path / "dpo",
                            ref_model=AutoModelForCausalLM.from_pretrained(str(conv_model)))
    assert abs(losses[0] - math.log(2)) < 1e-3  # policy == reference at the start
    # kodolly's DPO on the same pairs keeps the history in the prompt
    result = train_dpo(str(tmp_path / "pairs.jsonl"), str(conv_model), output_dir=str(tmp_path / "k"),
                       trainer=TWO_STEPS, log=lambda _m: None)
    assert len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)


def test_all_turns_refuses_a_template_that_rewrites_earlier_turns(rows):
    from tiny_model import build_tokenizer

    from kodolly.errors import ConfigError

    # like templates that strip past reasoning: earlier assistant turns render differently from the last one
    rewriting = (
        "{% for m in messages %}<|{{ m['role'] }}|>"
        "{% if m['role'] == 'assistant' and not loop.last %}(생략){% else %}{{ m['content'] }}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tokenizer = build_tokenizer(CONV.read_text("utf-8") + "(생략)", rewriting)
    with pytest.raises(ConfigError, match="--loss-on all-turns: the chat template does not render"):
        _examples(rows, tokenizer, loss_on="all-turns")
    train, _, _ = _examples(rows, tokenizer)  # the final answer alone is fine
    assert len(train) == 4
