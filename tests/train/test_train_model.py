"""kodolly.train.model: LoRA targets, 4-bit loading, and the bitsandbytes CPU gradient pitfall."""

from __future__ import annotations

import pytest
import torch

from kodolly.train import model as model_mod
from kodolly.train.config import LoraSettings

PROJECTIONS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def test_lora_defaults_target_every_attention_and_mlp_projection(tiny_model):
    model = model_mod.load_base_model(str(tiny_model))
    config = model_mod.lora_config(model, LoraSettings())
    assert sorted(config.target_modules) == PROJECTIONS
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 16, 0.05)


def test_models_without_llama_projections_get_all_linear():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=50, n_positions=32))
    assert model_mod.lora_targets(gpt2, "auto") == "all-linear"
    assert model_mod.lora_targets(gpt2, ["c_attn"]) == ["c_attn"]


def _qlora(tiny_model):
    from peft import LoraConfig, get_peft_model

    base = model_mod.load_base_model(str(tiny_model), load_in_4bit=True)
    torch.manual_seed(0)
    # init_lora_weights=False: non-zero B, so every LoRA layer has a gradient from the first step.
    return get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=PROJECTIONS, init_lora_weights=False))


IDS = torch.tensor([[2, 5, 40, 41, 42, 43, 6, 44, 45, 46, 3]])


def _grads(model) -> dict[str, torch.Tensor]:
    model.train()
    model.zero_grad()
    model(input_ids=IDS, labels=IDS).loss.backward()
    return {n: p.grad.clone() if p.grad is not None else None for n, p in model.named_parameters() if p.requires_grad}


def _eval_forward(model) -> None:
    model.eval()
    with torch.no_grad():
        model(input_ids=IDS)


def _same(a: dict, b: dict, rtol: float = 1e-6) -> bool:
    """Every gradient present in both and equal (up to ``rtol`` of the overall gradient norm)."""
    if any(a[k] is None or b[k] is None for k in a):
        return False
    diff = sum(float((a[k] - b[k]).norm()) ** 2 for k in a) ** 0.5
    norm = sum(float(a[k].norm()) ** 2 for k in a) ** 0.5
    return diff <= rtol * norm


def test_4bit_loading_quantises_and_keeps_training_layout(tiny_model):
    import bitsandbytes as bnb

    model = _qlora(tiny_model)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 2 * 7  # every projection of both layers is 4-bit
    assert all(m.support_avx512bf16_for_cpu is False for m in layers)
    assert layers[0].weight.quant_state.quant_type == "nf4"


def test_gradients_stay_right_after_an_eval_forward(tiny_model):
    """The pitfall: an eval-mode no-grad forward used to break every later backward on CPU."""
    model = _qlora(tiny_model)
    before = _grads(model)
    assert all(g is not None and g.abs().sum() > 0 for g in before.values())
    _eval_forward(model)
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 14 and not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)
    assert _same(before, _grads(model))
    assert model_mod.keep_4bit_trainable(model) == 14  # again, e.g. once the trainer wrapped the layers
    assert _same(before, _grads(model))


def test_without_the_fix_the_gradients_go_wrong(tiny_model):
    """Control: proves the test above can fail on this CPU (the repacking needs AVX512-BF16)."""
    import bitsandbytes as bnb
    from bitsandbytes.nn.modules import has_avx512bf16

    if not has_avx512bf16():
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes never repacks, so there is no pitfall to show")
    model = _qlora(tiny_model)
    before = _grads(model)
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = True  # what bitsandbytes sets by itself
    _eval_forward(model)
    assert all(m.weight.quant_state.packing_format_for_cpu for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))
    assert not _same(before, _grads(model))
    # a model whose weights were already repacked is refused, not half-repaired (the way back is not exact)
    with pytest.raises(RuntimeError, match=r"^base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.base_layer: this 4-bit "
                       r"weight was already repacked for CPU inference by an eval-mode forward; keep_4bit_trainable "
                       r"must run right after the model is loaded$"):
        model_mod.keep_4bit_trainable(model)
