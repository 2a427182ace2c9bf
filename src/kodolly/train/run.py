"""The one driver behind ``kodolly train sft`` and ``kodolly train dpo``: data, model, trl, save.

The run folder holds the LoRA adapter (``adapter_config.json``, ``adapter_model.safetensors``),
the tokenizer, and ``kodolly_train.json``: the exact settings (kodolly's and the keyword
arguments given to trl's config class), the data counts, the losses and the library versions.
``kodolly generate`` reads the prompt settings (system prompt, thinking mode, answer-end marker)
back from it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, require
from ..io.writers import write_json_atomic
from . import data as data_mod
from . import model as model_mod
from .config import TrainConfig
from .progress import quiet_libraries, summary_line, use_progress_log

RUN_FILE = "kodolly_train.json"


@dataclass
class TrainResult:
    output_dir: Path
    data: data_mod.DataReport
    losses: list[float] = field(default_factory=list)
    eval_loss: float | None = None
    merged_dir: Path | None = None
    steps: int = 0
    seconds: float = 0.0

    @property
    def config_path(self) -> Path:
        return self.output_dir / RUN_FILE


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("kodolly", "torch", "transformers", "trl", "peft", "bitsandbytes", "datasets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = ""
    return out


def base_model_reference(name_or_path: str) -> str:
    """A local model folder as an absolute path (so the run folder can be used from anywhere); a Hub id as is."""
    return str(Path(name_or_path).resolve()) if Path(name_or_path).is_dir() else name_or_path


def prepare_data(config: TrainConfig, tokenizer):
    renderer = data_mod.PromptRenderer(tokenizer, config.system_prompt, config.thinking)
    rows = data_mod.read_rows_as_dicts(config.data)
    build = data_mod.sft_examples if config.kind == "sft" else data_mod.dpo_examples
    extra = {"loss_on": config.loss_on} if config.kind == "sft" else {}
    train, validation, report = build(
        rows,
        renderer,
        answer_end=config.answer_end,
        max_prompt_tokens=config.max_prompt_tokens,
        long_prompts=config.long_prompts,
        **extra,
    )
    if not train:
        raise ConfigError(f"{config.data}: no training rows left ({report.format()})")
    return renderer, train, validation, report


def _trl_args(config: TrainConfig, cpu: bool):
    trl = require("trl", "train")
    cls = trl.SFTConfig if config.kind == "sft" else trl.DPOConfig
    kwargs = config.trainer_kwargs(on_cpu=cpu)
    if kwargs.get("report_to") == "wandb" or "wandb" in (kwargs.get("report_to") or []):
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            raise ConfigError("logging to W&B needs the wandb package: pip install wandb")
    try:
        return cls(**kwargs), kwargs
    except TypeError as exc:
        raise ConfigError(f"trainer setting not accepted by trl's {cls.__name__}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"trainer settings rejected by trl's {cls.__name__}: {exc}") from exc


@dataclass
class PreparedRun:
    """A trl trainer ready to ``train()``, and what kodolly records about it."""

    config: TrainConfig
    trainer: Any
    tokenizer: Any
    renderer: data_mod.PromptRenderer
    report: data_mod.DataReport
    trainer_kwargs: dict[str, Any]
    lora_targets: Any
    cpu: bool
    has_validation: bool


def _inherit_prompt_settings(config: TrainConfig, log: Callable[[str], None]) -> None:
    """Starting from a kodolly run's adapter: take its system prompt and answer-end marker unless given.

    A DPO run on an SFT adapter must render prompts and answers the way the SFT run did.
    """
    if not config.adapter:
        return
    settings = read_run_file(config.adapter).get("settings", {})
    for name in ("system_prompt", "answer_end"):
        if getattr(config, name) is None and settings.get(name):
            setattr(config, name, settings[name])
            log(f"{name} from {config.adapter}: {settings[name]!r}")


def build_trainer(config: TrainConfig, log: Callable[[str], None] = print) -> PreparedRun:
    """Data, model and trl trainer for ``config``, not yet trained."""
    config.validate()
    if not config.data:
        raise ConfigError("no training data: give DATA or `data` in the config file")
    if not Path(config.data).exists():
        raise ConfigError(f"{config.data}: no such file or folder")
    _inherit_prompt_settings(config, log)
    torch = model_mod.torch_module()
    trl = require("trl", "train")
    datasets = require("datasets", "train")
    datasets.disable_progress_bars()
    cpu = model_mod.on_cpu()

    tokenizer = model_mod.load_tokenizer(config.model)
    renderer, train_rows, validation_rows, report = prepare_data(config, tokenizer)
    log(f"data: {report.format()}")
    args, trainer_kwargs = _trl_args(config, cpu)

    torch.manual_seed(config.seed)
    model = model_mod.load_base_model(config.model, load_in_4bit=config.load_in_4bit)
    if config.adapter:
        model = model_mod.load_adapter(model, config.adapter, trainable=True)
        peft_config = None
        targets: Any = sorted(model.peft_config["default"].target_modules)
    else:
        peft_config = model_mod.lora_config(model, config.lora)
        targets = peft_config.target_modules if isinstance(peft_config.target_modules, str) else sorted(peft_config.target_modules)

    trainer_cls = trl.SFTTrainer if config.kind == "sft" else trl.DPOTrainer
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=data_mod.to_dataset(train_rows),
        eval_dataset=data_mod.to_dataset(validation_rows) if validation_rows else None,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    if config.load_in_4bit:
        model_mod.keep_4bit_trainable(trainer.model)
    if cpu:
        model_mod.adapters_to_float32(trainer.model)
    return PreparedRun(config, trainer, tokenizer, renderer, report, trainer_kwargs, targets, cpu, bool(validation_rows))


def train_kind(kind: str, data: str, model: str, *, config_file: str | None, trainer: dict[str, Any] | None,
               lora: dict[str, Any] | None, log: Callable[[str], None], settings: dict[str, Any]) -> "TrainResult":
    """A ``kind`` (``sft`` / ``dpo``) run of ``model`` on ``data``: the config file, then ``settings``, the
    ``lora`` and ``trainer`` overrides over it (what :func:`~kodolly.train.train_sft` and
    :func:`~kodolly.train.train_dpo` take)."""
    from .config import build_config

    config = build_config(
        kind,
        file=config_file,
        overrides={"data": data, "model": model, **settings},
        lora_overrides=lora,
        trainer_overrides=trainer,
    )
    return train(config, log=log)


def train(config: TrainConfig, log: Callable[[str], None] = print, *, verbose: bool = False,
          progress: bool | None = None) -> TrainResult:
    """Run SFT or DPO as ``config`` says and save the run folder. See the module docstring.

    ``log`` gets the data summary, one loss line per logging step and a final summary; library
    warnings and bars are hidden unless ``verbose``; ``progress``: one progress bar (default: on a terminal).
    """
    with quiet_libraries(verbose):
        return _train(config, log, progress)


def _train(config: TrainConfig, log: Callable[[str], None], progress: bool | None) -> TrainResult:
    prepared = build_trainer(config, log)
    trainer, report = prepared.trainer, prepared.report
    watch = use_progress_log(trainer, log, bar=progress)

    trainer.train()
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    eval_loss = None
    if prepared.has_validation:
        metrics = trainer.evaluate()
        eval_loss = float(metrics["eval_loss"]) if "eval_loss" in metrics else None
    bad = [x for x in losses + ([eval_loss] if eval_loss is not None else []) if not math.isfinite(x)]
    if bad:
        log(f"warning: non-finite loss during training: {bad[:3]}")

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(out), selected_adapters=["default"])
    prepared.tokenizer.save_pretrained(str(out))
    record = {
        "kodolly_train_version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kind": config.kind,
        "base_model": base_model_reference(config.model),
        "settings": config.to_dict(),
        "lora_target_modules": prepared.lora_targets,
        "chat_template_kwargs": prepared.renderer.template_kwargs,
        "trainer_class": type(trainer.args).__name__,
        "trainer_args": prepared.trainer_kwargs,
        "data": report.as_dict(),
        "metrics": {"train_losses": losses, "eval_loss": eval_loss, "global_step": trainer.state.global_step},
        "versions": _versions(),
        "device": "cpu" if prepared.cpu else "cuda",
    }
    write_json_atomic(out / RUN_FILE, record)
    result = TrainResult(output_dir=out, data=report, losses=losses, eval_loss=eval_loss,
                         steps=trainer.state.global_step, seconds=watch.seconds)
    if eval_loss is not None:
        log(f"validation loss: {eval_loss:.4f}")
    log(summary_line(result.steps, losses, result.seconds, str(out)))

    del trainer, prepared
    if config.merge:
        from .merge import merge_adapter

        result.merged_dir = merge_adapter(out, out / "merged")
        log(f"merged model written to {result.merged_dir}")
    return result


def read_run_file(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``kodolly_train.json`` of a run (or merged) folder, or ``{}`` for a model kodolly did not train."""
    import json

    path = Path(model_dir) / RUN_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc
