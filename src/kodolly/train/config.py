"""Training settings: kodolly's own few, plus a ``trainer`` table passed through to trl.

Settings come from defaults, then a TOML or YAML file, then command-line overrides, in that order.
kodolly declares only what it does itself (data layout, prompts, LoRA, quantisation, saving);
every trainer setting (learning rate, epochs, batch size, ``max_length``, ``beta``, ...) lives in
the ``trainer`` table and is handed unchanged to trl's ``SFTConfig`` / ``DPOConfig``, so anything
trl accepts works and nothing is re-declared here. A config file looks like::

    model = "Qwen/Qwen3-0.6B"
    system_prompt = "당신은 친절한 한국어 도우미입니다."
    answer_end = "(답변 종료)"

    [lora]
    r = 16

    [trainer]
    learning_rate = 2e-4
    num_train_epochs = 1
    per_device_train_batch_size = 4

This module imports nothing heavy: the CLI can build and check a config before torch loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, require

KINDS = ("sft", "dpo")
LONG_PROMPT_ACTIONS = ("drop", "cut")
LOSS_ON = ("final", "all-turns")

# Trainer settings kodolly chooses when the user does not; everything else is trl's default.
TRAINER_DEFAULTS: dict[str, dict[str, Any]] = {
    # logging_steps 10 + a log at the last step (kodolly.train.progress): every run reports a loss;
    # disable_tqdm: kodolly shows its own single bar
    "sft": {"learning_rate": 2e-4, "max_length": 1536, "save_strategy": "no", "report_to": "none",
            "logging_steps": 10, "disable_tqdm": True},
    "dpo": {"beta": 0.1, "max_length": 1536, "save_strategy": "no", "report_to": "none",
            "logging_steps": 10, "disable_tqdm": True},
}


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 16
    dropout: float = 0.05
    # "auto": the attention and MLP projections the model has (q,k,v,o,gate,up,down for Llama-style
    # models), else peft's "all-linear". A list names the modules exactly.
    target_modules: str | list[str] = "auto"


@dataclass
class TrainConfig:
    kind: str
    model: str
    data: str
    output_dir: str
    system_prompt: str | None = None
    thinking: bool = False  # Qwen3-style templates: False renders prompts with enable_thinking=False
    answer_end: str | None = None  # e.g. "(답변 종료)", appended to every answer and a stop string later
    max_prompt_tokens: int | None = 1024
    long_prompts: str = "drop"  # "drop" or "cut" prompts longer than max_prompt_tokens
    loss_on: str = "final"  # SFT on conversation rows: "final" answer, or "all-turns" (every assistant turn)
    load_in_4bit: bool = False
    adapter: str | None = None  # start from this LoRA adapter (e.g. an SFT run before DPO)
    merge: bool = False  # also write base + adapter merged into <output_dir>/merged
    seed: int = 42
    wandb: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)
    trainer: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.model:
            raise ConfigError("no base model: give --model (a local folder or a Hub id) or `model` in the config file")
        if self.long_prompts not in LONG_PROMPT_ACTIONS:
            raise ConfigError(f"long_prompts must be 'drop' or 'cut', got {self.long_prompts!r}")
        if self.loss_on not in LOSS_ON:
            raise ConfigError(f"loss_on must be 'final' or 'all-turns', got {self.loss_on!r}")
        if self.kind == "dpo" and self.loss_on != "final":
            raise ConfigError("loss_on is an SFT setting; DPO compares the final answers")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 1:
            raise ConfigError(f"max_prompt_tokens must be positive, got {self.max_prompt_tokens}")
        if self.answer_end is not None and not self.answer_end.strip():
            raise ConfigError("answer_end must not be blank")
        if self.lora.r < 1:
            raise ConfigError(f"lora.r must be positive, got {self.lora.r}")

    def trainer_kwargs(self, on_cpu: bool) -> dict[str, Any]:
        """The keyword arguments for trl's config class: kodolly's defaults under the user's settings."""
        kwargs = dict(TRAINER_DEFAULTS[self.kind])
        if self.wandb:
            kwargs["report_to"] = "wandb"
        if on_cpu:
            # trl's configs default to bf16 mixed precision, which needs a GPU (or use_cpu) to start.
            kwargs.update(use_cpu=True, bf16=False, fp16=False)
        kwargs["seed"] = self.seed
        kwargs.update(self.trainer)
        kwargs["output_dir"] = self.output_dir
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML (``.toml``) or YAML (``.yaml``/``.yml``) file as a dict."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror or exc})") from exc
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(raw.decode("utf-8"))
        elif suffix in (".yaml", ".yml"):
            yaml = require("yaml", "train")
            data = yaml.safe_load(raw.decode("utf-8")) or {}
        elif suffix == ".json":
            data = json.loads(raw)
        else:
            raise ConfigError(f"{p}: config files are .toml, .yaml/.yml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # tomllib / yaml / json each raise their own error types
        raise ConfigError(f"{p}: cannot parse the config file: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the config file must hold a table of settings")
    return data


_TOP_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"kind", "lora", "trainer"}
_LORA_FIELDS = {f.name for f in dataclasses.fields(LoraSettings)}


def build_config(
    kind: str,
    *,
    file: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    lora_overrides: dict[str, Any] | None = None,
    trainer_overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults < config file < overrides (``None`` values in overrides mean "not given")."""
    data = read_config_file(file) if file else {}
    unknown = set(data) - _TOP_FIELDS - {"lora", "trainer"}
    if unknown:
        raise ConfigError(
            f"{file}: unknown setting(s) {', '.join(sorted(unknown))}; trainer settings go in the [trainer] table"
        )
    lora_data = dict(data.get("lora") or {})
    bad_lora = set(lora_data) - _LORA_FIELDS
    if bad_lora:
        raise ConfigError(f"{file}: unknown [lora] setting(s) {', '.join(sorted(bad_lora))}")
    lora_data.update({k: v for k, v in (lora_overrides or {}).items() if v is not None})
    trainer = dict(data.get("trainer") or {})
    trainer.update(trainer_overrides or {})
    top = {k: v for k, v in data.items() if k in _TOP_FIELDS}
    top.update({k: v for k, v in (overrides or {}).items() if v is not None})
    top.setdefault("model", "")
    top.setdefault("data", "")
    top.setdefault("output_dir", os.path.join("out", kind))
    try:
        config = TrainConfig(kind=kind, lora=LoraSettings(**lora_data), trainer=trainer, **top)
    except TypeError as exc:
        raise ConfigError(f"bad settings: {exc}") from exc
    config.validate()
    return config


def parse_set(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs for the trainer table; VALUE is JSON when it parses, else text."""
    from ..config import key_values

    return key_values(pairs, "--set")
