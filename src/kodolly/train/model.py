"""Load the base model and tokenizer, add LoRA (or QLoRA), and work around bitsandbytes on CPU.

The CPU pitfall: bitsandbytes' ``Linear4bit`` repacks its weight into an AVX512-BF16 inference
layout the first time it runs a forward pass in eval mode without gradients (an evaluation, a
generation). After that, training forwards take the inference kernel, which has no backward: the
gradients of every LoRA layer upstream of a packed layer come out as ``None`` or wrong, the loss
still looks fine, and nothing errors. The repacking is decided per layer by its public
``support_avx512bf16_for_cpu`` attribute (bitsandbytes sets it from the CPU's features when the layer
is made); :func:`keep_4bit_trainable` sets it to ``False`` on every ``Linear4bit`` right after the model
is loaded, before any forward pass, so no weight is ever repacked and nothing has to be unpacked.
kodolly calls it whenever it loads a 4-bit model for training (and again once the trainer has
wrapped the layers).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, require

# The attention and MLP projections of Llama-style models (Llama, Qwen2/3, Mistral, Gemma, EXAONE's
# renamed ones aside): LoRA's default targets when the model has them.
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def torch_module():
    return require("torch", "train")


def on_cpu() -> bool:
    torch = torch_module()
    return not torch.cuda.is_available()


def load_tokenizer(name_or_path: str):
    transformers = require("transformers", "train")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name_or_path)
    except OSError as exc:
        raise ConfigError(f"{name_or_path}: cannot load a tokenizer ({exc})") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(cpu: bool):
    torch = torch_module()
    transformers = require("transformers", "train")
    require("bitsandbytes", "train")
    if cpu:
        compute = torch.float32
    else:
        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return transformers.BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def load_base_model(name_or_path: str, *, load_in_4bit: bool = False, for_training: bool = True):
    """The base causal LM: float32 on CPU, the checkpoint's dtype on GPU; 4-bit nf4 when asked."""
    torch = torch_module()
    transformers = require("transformers", "train")
    cpu = on_cpu()
    kwargs: dict[str, Any] = {"dtype": torch.float32 if cpu else "auto"}
    if load_in_4bit:
        kwargs["quantization_config"] = quantization_config(cpu)
        kwargs["device_map"] = {"": "cpu" if cpu else 0}
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except OSError as exc:
        raise ConfigError(f"{name_or_path}: cannot load the model ({exc})") from exc
    if load_in_4bit and for_training:
        keep_4bit_trainable(model)
        peft = require("peft", "train")
        # Freezes the base, upcasts norms to float32; gradient checkpointing is the trainer's setting.
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model


def keep_4bit_trainable(model) -> int:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference (see the module docstring).

    Returns how many ``Linear4bit`` layers were seen. Safe to call again (e.g. after peft wraps the
    layers). It must come before the model's first eval-mode no-grad forward: a layer whose weight is
    already in the inference layout is refused (an error naming it), since the way back is private to
    bitsandbytes and not exact (the repacking rounds the quantisation scales to bf16).
    """
    bnb = require("bitsandbytes", "train")
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            count += 1
            state = getattr(module.weight, "quant_state", None)
            if getattr(state, "packing_format_for_cpu", False):
                raise RuntimeError(
                    f"{name}: this 4-bit weight was already repacked for CPU inference by an eval-mode forward; "
                    "keep_4bit_trainable must run right after the model is loaded"
                )
            module.support_avx512bf16_for_cpu = False
    return count


def lora_targets(model, setting: str | list[str]) -> str | list[str]:
    """``auto``: the Llama-style projections the model has, else peft's ``all-linear``."""
    if setting != "auto":
        return setting
    torch = torch_module()
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt")
    }
    found = [p for p in PROJECTIONS if p in names]
    return found if len(found) >= 4 else "all-linear"


def lora_config(model, lora) -> Any:
    peft = require("peft", "train")
    return peft.LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora_targets(model, lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def load_adapter(model, adapter_dir: str, *, trainable: bool):
    peft = require("peft", "train")
    try:
        return peft.PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{adapter_dir}: cannot load the LoRA adapter ({exc})") from exc


def adapters_to_float32(model) -> None:
    """On CPU keep the trainable LoRA weights in float32 (trl casts QLoRA adapters to bf16 for GPUs)."""
    torch = torch_module()
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.to(torch.float32)
