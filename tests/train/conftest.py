"""Shared pieces of the training tests: one tiny model for the session, data converted by kodolly.

Everything runs on CPU with one thread (two threads on a busy 2-core machine are ~10x slower) and
nothing comes from the Hub.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_DISABLED"] = "true"

import pytest

from tiny_model import build_tiny

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "train"
SFT_SOURCE = FIXTURES / "dolly_ko.jsonl"
DPO_ROWS = FIXTURES / "dpo_ko.jsonl"
MARKER = "(답변 종료)"

# Enough steps at a high learning rate for the tiny model to memorise the six fixture answers.
FAST = {
    "learning_rate": 1e-2,
    "per_device_train_batch_size": 6,
    "logging_steps": 5,
    "activation_checkpointing": False,
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
}


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random 2-layer Llama (hidden 64) with a character tokenizer covering the fixtures."""
    text = SFT_SOURCE.read_text(encoding="utf-8") + DPO_ROWS.read_text(encoding="utf-8")
    return build_tiny(tmp_path_factory.mktemp("tiny") / "model", text)


@pytest.fixture(scope="session")
def sft_parquet(tmp_path_factory) -> Path:
    """The SFT fixture converted by kodolly itself (no split column: everything is train)."""
    from kodolly import api

    out = tmp_path_factory.mktemp("data") / "ko.parquet"
    result = api.convert([str(SFT_SOURCE)], "dolly", str(out))
    assert result.tally.written == 6
    return out


def _sft_run(tiny_model, sft_parquet, out: Path, **settings):
    """60 steps of SFT on the fixture rows with the answer-end marker (``settings``: more TrainConfig fields)."""
    from kodolly.train import train_sft

    return train_sft(
        str(sft_parquet), str(tiny_model), output_dir=str(out), answer_end=MARKER,
        trainer={**FAST, "max_steps": 60}, log=lambda _msg: None, **settings,
    )


@pytest.fixture(scope="session")
def sft_run(tiny_model, sft_parquet, tmp_path_factory):
    """A LoRA SFT run with the answer-end marker, merged, shared by the reload/merge/generate tests."""
    return _sft_run(tiny_model, sft_parquet, tmp_path_factory.mktemp("runs") / "sft", merge=True)


@pytest.fixture(scope="session")
def qlora_sft_run(tiny_model, sft_parquet, tmp_path_factory):
    """A 4-bit QLoRA SFT run (the DPO tests start from it)."""
    return _sft_run(tiny_model, sft_parquet, tmp_path_factory.mktemp("runs") / "sft4", load_in_4bit=True)
