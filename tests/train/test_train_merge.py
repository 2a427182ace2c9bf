"""kodolly.train.merge: base + adapter merged equals base with the adapter on it."""

from __future__ import annotations

import json

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from conftest import MARKER

IDS = torch.tensor([[2, 5, 40, 41, 42, 43, 6, 44, 45, 46, 3]])


def _logits(model) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=IDS).logits


def test_reloaded_adapter_and_merged_model_give_the_same_outputs(sft_run, tiny_model):
    merged_dir = sft_run.merged_dir
    assert merged_dir == sft_run.output_dir / "merged"
    base_logits = _logits(AutoModelForCausalLM.from_pretrained(tiny_model))
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), sft_run.output_dir)
    adapted_logits = _logits(adapted)
    merged_logits = _logits(AutoModelForCausalLM.from_pretrained(merged_dir))
    # The adapter learnt something (reloading it changes the outputs) ...
    assert (adapted_logits - base_logits).abs().max() > 0.1
    # ... and merging it into the weights changes nothing beyond float rounding.
    torch.testing.assert_close(merged_logits, adapted_logits, atol=1e-4, rtol=1e-4)
    run = json.loads((merged_dir / "kodolly_train.json").read_text(encoding="utf-8"))
    assert run["merged"] is True and run["settings"]["answer_end"] == MARKER
    assert not (merged_dir / "adapter_config.json").exists()
