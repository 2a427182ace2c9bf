"""Preference tuning: kodolly's (or trl's) DPO rows -> trl's ``DPOTrainer`` with LoRA or QLoRA.

Defaults: beta 0.1, max length 1536, prompts over 1024 tokens dropped (or cut) before trl sees
them. With ``adapter=`` (e.g. an SFT run folder) training continues that adapter and the
reference model is the base with a frozen copy of it (trl's "ref" adapter), i.e. the SFT model.
"""

from __future__ import annotations

from typing import Any, Callable

from .run import TrainResult, train_kind


def train_dpo(data: str, model: str, *, config_file: str | None = None, trainer: dict[str, Any] | None = None,
              lora: dict[str, Any] | None = None, log: Callable[[str], None] = print, **settings: Any) -> TrainResult:
    """Preference-tune ``model`` on ``data``; arguments as :func:`kodolly.train.sft.train_sft`."""
    return train_kind("dpo", data, model, config_file=config_file, trainer=trainer, lora=lora, log=log, settings=settings)
