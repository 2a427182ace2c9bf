"""Supervised fine-tuning: kodolly's Dolly rows -> trl's ``SFTTrainer`` with LoRA or QLoRA.

Loss is on the answers only: rows go to trl as conversational prompt/completion pairs, which trl
renders with the tokenizer's chat template and masks up to where the completion starts.
"""

from __future__ import annotations

from typing import Any, Callable

from .run import TrainResult, train_kind


def train_sft(data: str, model: str, *, config_file: str | None = None, trainer: dict[str, Any] | None = None,
              lora: dict[str, Any] | None = None, log: Callable[[str], None] = print, **settings: Any) -> TrainResult:
    """Fine-tune ``model`` on ``data`` (parquet, JSONL or a datasets folder of kodolly rows).

    ``settings`` are :class:`~kodolly.train.config.TrainConfig` fields (``output_dir``,
    ``system_prompt``, ``answer_end``, ``load_in_4bit``, ``merge``, ...); ``trainer`` goes to
    trl's ``SFTConfig``; ``lora`` overrides the LoRA defaults (r=16, alpha=16, dropout=0.05).
    """
    return train_kind("sft", data, model, config_file=config_file, trainer=trainer, lora=lora, log=log, settings=settings)
