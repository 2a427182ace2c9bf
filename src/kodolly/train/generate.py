"""Answer a question with a tuned model: a quick check after training.

``MODEL_DIR`` is a kodolly run folder (LoRA adapter: the base model named in kodolly_train.json
is loaded and the adapter put on it), a merged folder, or any local causal LM with a chat
template. The prompt is rendered exactly as in training (system prompt, Qwen3 no-thinking mode)
and generation stops at the answer-end marker when the run used one: models tuned with a marker
learn to write it, and often go on past their EOS without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, require
from . import model as model_mod
from .data import PromptRenderer, user_content
from .merge import adapter_base
from .run import read_run_file


@dataclass
class Generator:
    model: Any
    tokenizer: Any
    renderer: PromptRenderer
    answer_end: str | None

    def prompt_ids(self, question: str, context: str = ""):
        messages = self.renderer.messages(user_content(question, context))
        out = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=True, return_dict=True, return_tensors="pt",
            **self.renderer.template_kwargs,
        )
        return out["input_ids"].to(self.model.device), out["attention_mask"].to(self.model.device)

    def answer(self, question: str, context: str = "", *, max_new_tokens: int = 256, do_sample: bool = False,
               temperature: float | None = None, top_p: float | None = None) -> str:
        torch = model_mod.torch_module()
        input_ids, attention_mask = self.prompt_ids(question, context)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample}
        if do_sample:
            if temperature is not None:
                kwargs["temperature"] = temperature
            if top_p is not None:
                kwargs["top_p"] = top_p
        else:  # greedy: drop sampling settings a checkpoint's generation_config may carry
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self.answer_end:
            kwargs.update(stop_strings=[self.answer_end], tokenizer=self.tokenizer)
        if self.tokenizer.pad_token_id is not None:
            kwargs["pad_token_id"] = self.tokenizer.pad_token_id
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        text = self.tokenizer.decode(out[0, input_ids.shape[1]:], skip_special_tokens=True)
        return cut_at_marker(text, self.answer_end)


def cut_at_marker(text: str, marker: str | None) -> str:
    """The answer before the answer-end marker (the whole text when there is none), stripped."""
    if marker and marker in text:
        text = text[: text.index(marker)]
    return text.strip()


def load_generator(model_dir: str | os.PathLike[str], *, base_model: str | None = None, load_in_4bit: bool = False,
                   system_prompt: str | None = None, answer_end: str | None = None) -> Generator:
    """Load a run folder (adapter), a merged folder or a plain model for :meth:`Generator.answer`."""
    transformers = require("transformers", "train")
    transformers.utils.logging.disable_progress_bar()  # keep the answer alone on stdout
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ConfigError(f"{model_dir}: no such model folder")
    run = read_run_file(model_dir)
    settings = run.get("settings", {})
    tokenizer = model_mod.load_tokenizer(str(model_dir))
    if (model_dir / "adapter_config.json").exists():
        base = base_model or adapter_base(model_dir)
        model = model_mod.load_base_model(base, load_in_4bit=load_in_4bit, for_training=False)
        model = model_mod.load_adapter(model, str(model_dir), trainable=False)
    else:
        model = model_mod.load_base_model(str(model_dir), load_in_4bit=load_in_4bit, for_training=False)
    if not load_in_4bit and not model_mod.on_cpu():
        model = model.to("cuda")
    model.eval()
    renderer = PromptRenderer(
        tokenizer,
        system_prompt if system_prompt is not None else settings.get("system_prompt"),
        bool(settings.get("thinking", False)),
    )
    marker = answer_end if answer_end is not None else settings.get("answer_end")
    return Generator(model=model, tokenizer=tokenizer, renderer=renderer, answer_end=marker or None)


def generate(model_dir: str | os.PathLike[str], question: str, context: str = "", *, base_model: str | None = None,
             load_in_4bit: bool = False, max_new_tokens: int = 256, do_sample: bool = False,
             temperature: float | None = None, top_p: float | None = None) -> str:
    """One answer from the tuned model in ``model_dir`` (see the module docstring)."""
    gen = load_generator(model_dir, base_model=base_model, load_in_4bit=load_in_4bit)
    return gen.answer(question, context, max_new_tokens=max_new_tokens, do_sample=do_sample,
                      temperature=temperature, top_p=top_p)
