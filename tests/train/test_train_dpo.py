"""kodolly.train.dpo: real trl DPO runs on the tiny model, with LoRA and with 4-bit QLoRA."""

from __future__ import annotations

import json
import math

from conftest import DPO_ROWS, FAST, MARKER
from kodolly.train import train_dpo


def test_lora_dpo_from_the_base_model(tiny_model, tmp_path):
    messages: list[str] = []
    result = train_dpo(
        str(DPO_ROWS), str(tiny_model), output_dir=str(tmp_path / "dpo"), log=messages.append,
        trainer={**FAST, "per_device_train_batch_size": 4, "logging_steps": 1, "max_steps": 12, "learning_rate": 5e-3},
    )
    losses = result.losses
    assert all(math.isfinite(x) for x in losses)
    # A fresh LoRA adapter starts equal to the reference: the first DPO loss is log 2.
    assert abs(losses[0] - math.log(2)) < 1e-3
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.eval_loss is not None and math.isfinite(result.eval_loss)
    assert messages[0] == "data: 5 rows, train 4, validation 1, long prompts dropped 0"
    run = json.loads(result.config_path.read_text(encoding="utf-8"))
    assert run["trainer_class"] == "DPOConfig"
    assert run["trainer_args"]["beta"] == 0.1 and run["trainer_args"]["max_length"] == 1536
    assert run["settings"]["max_prompt_tokens"] == 1024 and run["settings"]["adapter"] is None


def test_qlora_dpo_continues_an_sft_adapter(tiny_model, qlora_sft_run, tmp_path):
    out = tmp_path / "dpo4"
    messages: list[str] = []
    result = train_dpo(
        str(DPO_ROWS), str(tiny_model), output_dir=str(out), load_in_4bit=True, adapter=str(qlora_sft_run.output_dir),
        log=messages.append,
        trainer={**FAST, "per_device_train_batch_size": 4, "logging_steps": 1, "max_steps": 8, "learning_rate": 5e-3},
    )
    losses = result.losses
    # The reference is the SFT adapter itself (trl's frozen "ref" copy), so DPO starts at log 2 too.
    assert abs(losses[0] - math.log(2)) < 1e-3
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0], losses
    # Only the trained adapter is saved, not trl's reference copy.
    assert (out / "adapter_model.safetensors").exists() and not (out / "ref").exists()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 16
    run = json.loads(result.config_path.read_text(encoding="utf-8"))
    assert run["settings"]["adapter"] == str(qlora_sft_run.output_dir) and run["settings"]["load_in_4bit"] is True
    # The SFT run's answer-end marker carries over, so chosen and rejected answers end as in SFT.
    assert run["settings"]["answer_end"] == MARKER
    assert messages[0] == f"answer_end from {qlora_sft_run.output_dir}: {MARKER!r}"


def test_long_prompts_are_dropped_before_trl_and_reported(tiny_model, tmp_path):
    messages: list[str] = []
    # "<s><|user|>" + question + "<|assistant|>": the three short questions fit in 16 tokens, the two long ones do not.
    result = train_dpo(
        str(DPO_ROWS), str(tiny_model), output_dir=str(tmp_path / "dpo"), max_prompt_tokens=16, log=messages.append,
        trainer={**FAST, "max_steps": 1},
    )
    assert messages[0] == "data: 5 rows, train 2, validation 1, long prompts dropped 2"
    assert result.data.long_prompts_dropped == 2
