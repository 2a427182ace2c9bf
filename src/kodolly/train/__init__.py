"""Training on kodolly's output: LoRA/QLoRA SFT and DPO on trl, a merge, and a quick generate.

Needs the ``train`` extra (and torch, installed first; see the README's "Training"). Nothing here
imports torch, transformers, trl or peft until a function runs, so ``import kodolly.train`` is cheap.

- :func:`kodolly.train.sft.train_sft` / :func:`kodolly.train.dpo.train_dpo` — train, save the run folder
- :func:`kodolly.train.merge.merge_adapter` — base + adapter -> a plain model folder
- :func:`kodolly.train.generate.generate` — answer a question with a run (or merged) folder
"""

from __future__ import annotations

from typing import Any

__all__ = ["train_sft", "train_dpo", "merge_adapter", "generate"]


def train_sft(*args: Any, **kwargs: Any):
    from .sft import train_sft as impl

    return impl(*args, **kwargs)


def train_dpo(*args: Any, **kwargs: Any):
    from .dpo import train_dpo as impl

    return impl(*args, **kwargs)


def merge_adapter(*args: Any, **kwargs: Any):
    from .merge import merge_adapter as impl

    return impl(*args, **kwargs)


def generate(*args: Any, **kwargs: Any):
    from .generate import generate as impl

    return impl(*args, **kwargs)
