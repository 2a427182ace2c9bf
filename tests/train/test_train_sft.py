"""kodolly.train.sft: real trl SFT runs on the tiny model, with LoRA and with 4-bit QLoRA."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import FAST, MARKER, SFT_SOURCE
from kodolly.train.config import build_config
from kodolly.train.run import build_trainer


def _run_file(result) -> dict:
    return json.loads(result.config_path.read_text(encoding="utf-8"))


def _decreasing(losses: list[float]) -> bool:
    return len(losses) >= 3 and all(math.isfinite(x) for x in losses) and losses[-1] < 0.5 * losses[0]


def test_lora_sft_learns_the_fixture_and_saves_the_run(sft_run, tiny_model):
    assert _decreasing(sft_run.losses), sft_run.losses
    out = sft_run.output_dir
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "kodolly_train.json"} <= {
        p.name for p in out.iterdir()
    }
    run = _run_file(sft_run)
    assert run["kind"] == "sft" and run["base_model"] == str(tiny_model.resolve())
    assert run["settings"]["answer_end"] == MARKER and run["settings"]["lora"]["r"] == 16
    assert run["lora_target_modules"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert run["trainer_class"] == "SFTConfig"
    assert run["trainer_args"]["use_cpu"] is True and run["trainer_args"]["bf16"] is False
    assert run["trainer_args"]["max_steps"] == 60 and run["trainer_args"]["report_to"] == "none"
    assert run["data"] == {
        "rows": 6, "train": 6, "validation": 0, "test_ignored": 0, "long_prompts_dropped": 0,
        "long_prompts_cut": 0, "skipped": {},
    }
    assert run["metrics"]["train_losses"] == sft_run.losses and run["metrics"]["global_step"] == 60
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (16, 16, 0.05)


def test_loss_is_on_the_answer_and_end_of_turn_only(tiny_model, sft_parquet, tmp_path):
    config = build_config(
        "sft", overrides={"model": str(tiny_model), "data": str(sft_parquet), "output_dir": str(tmp_path),
                          "answer_end": MARKER, "system_prompt": "한국어 답변"},
        trainer_overrides={**FAST, "max_steps": 1},
    )
    prepared = build_trainer(config, log=lambda _m: None)
    first = prepared.trainer.train_dataset[0]
    tok = prepared.tokenizer
    trained = [t for t, label in zip(first["input_ids"], first["labels"]) if label != -100]
    masked = [t for t, label in zip(first["input_ids"], first["labels"]) if label == -100]
    # Everything up to the generation prompt is masked; the answer, the marker and </s> are learnt.
    assert tok.decode(masked) == "<s><|system|>한국어 답변<|user|>한국의 수도는 어디인가요?<|assistant|>"
    assert tok.decode(trained) == "한국의 수도는 서울입니다.\n(답변 종료)</s>"


def test_qlora_sft_with_validation_split_and_evaluation_during_training(tiny_model, tmp_path):
    # Rows with a split column; evaluating every few steps puts eval-mode no-grad forwards between
    # training steps, the situation that broke 4-bit gradients on CPU.
    rows = [json.loads(line) for line in SFT_SOURCE.read_text(encoding="utf-8").splitlines()]
    for i, r in enumerate(rows):
        r["split"] = "validation" if i == 5 else "train"
    rows.append({**rows[0], "split": "test"})
    data = tmp_path / "split.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    from kodolly.train import train_sft

    result = train_sft(
        str(data), str(tiny_model), output_dir=str(tmp_path / "run"), load_in_4bit=True, log=lambda _m: None,
        trainer={**FAST, "max_steps": 30, "eval_strategy": "steps", "eval_steps": 5},
    )
    assert _decreasing(result.losses), result.losses
    assert result.eval_loss is not None and math.isfinite(result.eval_loss)
    assert (result.data.train, result.data.validation, result.data.test_ignored) == (5, 1, 1)
    run = _run_file(result)
    assert run["settings"]["load_in_4bit"] is True
    assert sum(1 for _ in (tmp_path / "run").glob("adapter_model.safetensors")) == 1


def test_qlora_sft_run(qlora_sft_run):
    assert _decreasing(qlora_sft_run.losses), qlora_sft_run.losses
    assert (qlora_sft_run.output_dir / "adapter_model.safetensors").exists()


def test_qwen3_style_template_trains_with_thinking_off(sft_parquet, tmp_path):
    from tiny_model import THINKING_CHAT_TEMPLATE, build_tiny

    model_dir = build_tiny(tmp_path / "thinking", SFT_SOURCE.read_text(encoding="utf-8"), THINKING_CHAT_TEMPLATE)
    config = build_config(
        "sft", overrides={"model": str(model_dir), "data": str(sft_parquet), "output_dir": str(tmp_path / "run")},
        trainer_overrides={**FAST, "max_steps": 1},
    )
    prepared = build_trainer(config, log=lambda _m: None)
    first = prepared.trainer.train_dataset[0]
    masked = [t for t, label in zip(first["input_ids"], first["labels"]) if label == -100]
    # trl rendered the prompt with enable_thinking=False: the empty think block is part of the prompt.
    assert prepared.tokenizer.decode(masked) == "<s><|user|>한국의 수도는 어디인가요?<|assistant|><think></think>"
    assert prepared.renderer.template_kwargs == {"enable_thinking": False}
