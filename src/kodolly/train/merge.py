"""Merge a LoRA adapter into its base model and save the result as a plain transformers model.

The base is loaded unquantised (float32 on CPU, the checkpoint's dtype on GPU) even when the
adapter was trained with QLoRA: merging into 4-bit weights would round the adapter away.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..io.writers import write_json_atomic
from . import model as model_mod
from .run import RUN_FILE, read_run_file


def adapter_base(adapter_dir: str | os.PathLike[str]) -> str:
    """The base model an adapter was trained on: from kodolly_train.json, else from adapter_config.json."""
    import json

    run = read_run_file(adapter_dir)
    if run.get("base_model"):
        return run["base_model"]
    cfg = Path(adapter_dir) / "adapter_config.json"
    try:
        base = json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{adapter_dir}: not a LoRA adapter folder ({exc})") from exc
    if not base:
        raise ConfigError(f"{adapter_dir}: the adapter does not name its base model; pass the base model")
    return base


def merge_adapter(adapter_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], base_model: str | None = None) -> Path:
    adapter_dir, out = Path(adapter_dir), Path(out_dir)
    base = base_model or adapter_base(adapter_dir)
    model = model_mod.load_base_model(base, load_in_4bit=False, for_training=False)
    model = model_mod.load_adapter(model, str(adapter_dir), trainable=False)
    merged = model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    model_mod.load_tokenizer(str(adapter_dir)).save_pretrained(str(out))
    run = read_run_file(adapter_dir)
    run.update({"merged": True, "merged_from_adapter": str(adapter_dir.resolve()), "base_model": base})
    write_json_atomic(out / RUN_FILE, run)
    return out
