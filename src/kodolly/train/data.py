"""kodolly rows -> trl's conversational prompt/completion examples, rendered by the model's chat template.

SFT rows (kodolly's Dolly output) become::

    prompt:     [{"role": "system", "content": SYSTEM}]?  +  [{"role": "user", "content": USER}]
    completion: [{"role": "assistant", "content": RESPONSE + "\\n" + ANSWER_END?}]

with ``USER = instruction`` when there is no context, else ``instruction + "\\n\\n" + context``.
trl renders both with the tokenizer's own chat template and trains on the completion tokens only
(the answer and the template's end-of-turn), which works with any template: no ``{% generation %}``
markers needed.

A conversation row (earlier turns in ``messages``) puts them before it as real turns
(:func:`kodolly.turns.conversation_prompt`: its own system message, alternating user/assistant
turns, the instruction as the last user turn); the ``context`` transcript is then not used. The
configured system prompt goes in front only when the row has none.

``loss_on="all-turns"`` trains on every assistant turn of a conversation: kodolly renders the whole
conversation with the chat template and gives trl ``input_ids`` with an ``assistant_masks`` column
that marks each assistant turn (its answer and the template's end-of-turn), found by rendering
each prefix of the conversation; a template that does not render a conversation's prefixes as
prefixes of it is an error for this mode.

DPO rows come in kodolly's layout (Dolly fields + ``rejected``) or trl's (``prompt``/``chosen``/
``rejected`` as plain strings, or as message lists) and become ``prompt``/``chosen``/``rejected``
message lists the same way.

Rows may carry a ``split`` column (``train``/``validation``/``test``); without one every row is
training data. ``test`` rows are left out of training and counted.

Prompts longer than ``max_prompt_tokens`` (rendered with the template, generation prompt included)
are dropped, or cut: the end of the user turn goes (the instruction comes first, so a long context
loses its tail), because trl itself no longer has a prompt-length setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError
from ..turns import conversation_prompt

ANSWER_END_SEPARATOR = "\n"


@dataclass
class DataReport:
    """What happened to the rows on the way to trl; every row read is in exactly one count."""

    rows: int = 0
    train: int = 0
    validation: int = 0
    test_ignored: int = 0
    long_prompts_dropped: int = 0
    long_prompts_cut: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """rows = train + validation + test_ignored + dropped + skipped (cut rows stay in train/validation)."""
        accounted = self.train + self.validation + self.test_ignored + self.long_prompts_dropped + sum(self.skipped.values())
        if accounted != self.rows:  # pragma: no cover - a bug in this module, not in the data
            raise AssertionError(f"data report does not add up: {self.as_dict()}")

    def format(self) -> str:
        parts = [f"{self.rows} rows", f"train {self.train}", f"validation {self.validation}"]
        if self.test_ignored:
            parts.append(f"test (not used) {self.test_ignored}")
        parts.append(f"long prompts dropped {self.long_prompts_dropped}")
        if self.long_prompts_cut:
            parts.append(f"cut {self.long_prompts_cut}")
        for reason, n in sorted(self.skipped.items()):
            parts.append(f"skipped {reason} {n}")
        return ", ".join(parts)


def user_content(instruction: str, context: str | None) -> str:
    """The user turn of a Dolly row: the instruction, then a blank line and the context if any."""
    context = (context or "").strip()
    return f"{instruction.strip()}\n\n{context}" if context else instruction.strip()


def with_answer_end(text: str, marker: str | None) -> str:
    """The answer with the answer-end marker on its own line (once)."""
    text = text.rstrip()
    if not marker or text.endswith(marker):
        return text
    return f"{text}{ANSWER_END_SEPARATOR}{marker}"


class PromptRenderer:
    """Builds prompt messages and measures them with the tokenizer's chat template."""

    def __init__(self, tokenizer, system_prompt: str | None = None, thinking: bool = False) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                "the tokenizer has no chat template; train a chat/instruct model or set tokenizer.chat_template"
            )
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.template_kwargs: dict[str, Any] = template_kwargs(tokenizer, thinking)

    def messages(self, user_text: str) -> list[dict[str, str]]:
        msgs = []
        if self.system_prompt:
            msgs.append({"role": "system", "content": self.system_prompt})
        msgs.append({"role": "user", "content": user_text})
        return msgs

    def with_system(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A conversational prompt with the system prompt added in front unless it has one."""
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        if self.system_prompt and not (msgs and msgs[0]["role"] == "system"):
            msgs.insert(0, {"role": "system", "content": self.system_prompt})
        return msgs

    def _ids(self, messages: list[dict[str, Any]], generation_prompt: bool) -> list[int]:
        out = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=generation_prompt, return_dict=True, **self.template_kwargs
        )
        return list(out["input_ids"])

    def all_turns_example(self, prompt: list[dict[str, Any]], completion: list[dict[str, Any]],
                          answer_end: str | None) -> dict[str, list[int]]:
        """``input_ids`` of the whole conversation and ``assistant_masks`` = 1 on every assistant turn."""
        msgs = [dict(m) for m in prompt] + [dict(m) for m in completion]
        for m in msgs:
            if m["role"] == "assistant":
                m["content"] = with_answer_end(m["content"], answer_end)
        ids = self._ids(msgs, False)
        mask = [0] * len(ids)
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            start, end = self._ids(msgs[:i], True), self._ids(msgs[: i + 1], False)
            if ids[: len(start)] != start or ids[: len(end)] != end:
                raise ConfigError(
                    "--loss-on all-turns: the chat template does not render the start of a conversation as the "
                    "start of the whole (e.g. it rewrites earlier turns); use --loss-on final"
                )
            mask[len(start):len(end)] = [1] * (len(end) - len(start))
        return {"input_ids": ids, "assistant_masks": mask}

    def render(self, messages: list[dict[str, Any]]) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **self.template_kwargs
        )

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        out = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=True, return_dict=True, **self.template_kwargs
        )
        return len(out["input_ids"])

    def fit(self, messages: list[dict[str, Any]], limit: int | None, action: str) -> tuple[list[dict[str, Any]] | None, str]:
        """``(messages, "ok"|"cut")`` when the prompt fits in ``limit`` tokens (after cutting), else ``(None, "drop")``."""
        if limit is None:
            return messages, "ok"
        length = self.prompt_tokens(messages)
        if length <= limit:
            return messages, "ok"
        if action != "cut":
            return None, "drop"
        msgs = [dict(m) for m in messages]
        last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=None)
        if last_user is None:
            return None, "drop"
        ids = self.tokenizer(msgs[last_user]["content"], add_special_tokens=False)["input_ids"]
        keep = len(ids)
        for _ in range(8):  # decode/re-encode can shift a token or two; shrink until it fits
            keep -= max(length - limit, 1)
            if keep <= 0:
                return None, "drop"  # the rest of the prompt (system prompt, template) alone is too long
            msgs[last_user]["content"] = self.tokenizer.decode(ids[:keep], skip_special_tokens=True)
            length = self.prompt_tokens(msgs)
            if length <= limit:
                return msgs, "cut"
        return None, "drop"


def template_kwargs(tokenizer, thinking: bool) -> dict[str, Any]:
    """``{"enable_thinking": False}`` for templates with Qwen3's thinking switch (unless thinking is wanted)."""
    template = tokenizer.chat_template
    if isinstance(template, dict):  # several named templates
        template = template.get("default", "") or ""
    if "enable_thinking" in str(template):
        return {"enable_thinking": bool(thinking)}
    return {}


def read_rows_as_dicts(path: str) -> list[dict[str, Any]]:
    from ..io.writers import read_rows

    try:
        table = read_rows(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file or folder") from exc
    return table.to_pylist()


def _split_of(row: dict[str, Any]) -> str:
    split = row.get("split")
    return "train" if split in (None, "") else str(split)


def _route(row: dict[str, Any], report: "DataReport") -> str | None:
    """``train`` or ``validation`` for a row, or ``None`` (counted in the report) for test and unknown splits."""
    split = _split_of(row)
    if split == "test":
        report.test_ignored += 1
        return None
    if split not in ("train", "validation"):
        report.skip(f"unknown_split:{split}")
        return None
    return split


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def row_prompt(row: dict[str, Any], renderer: PromptRenderer) -> list[dict[str, str]]:
    """The prompt messages of a Dolly row: a conversation's turns, else the instruction (+ context)."""
    turns = conversation_prompt(row)
    if turns is not None:
        return renderer.with_system(turns)
    return renderer.messages(user_content(_text(row.get("instruction")), _text(row.get("context"))))


def sft_examples(rows: list[dict[str, Any]], renderer: PromptRenderer, *, answer_end: str | None,
                 max_prompt_tokens: int | None, long_prompts: str,
                 loss_on: str = "final") -> tuple[list[dict], list[dict], DataReport]:
    """Train and validation examples for SFTTrainer, and the report of what happened to every row."""
    if rows and not {"instruction", "response"} <= set(rows[0]):
        raise ConfigError(
            f"SFT data needs kodolly's Dolly columns (instruction, context, response); found {', '.join(rows[0])}"
        )
    report = DataReport(rows=len(rows))
    train: list[dict] = []
    validation: list[dict] = []
    for row in rows:
        split = _route(row, report)
        if split is None:
            continue
        instruction, response = _text(row.get("instruction")), _text(row.get("response"))
        if not instruction.strip() or not response.strip():
            report.skip("empty_field")
            continue
        prompt, status = renderer.fit(row_prompt(row, renderer), max_prompt_tokens, long_prompts)
        if prompt is None:
            report.long_prompts_dropped += 1
            continue
        report.long_prompts_cut += status == "cut"
        completion = [{"role": "assistant", "content": with_answer_end(response, answer_end)}]
        if loss_on == "all-turns":
            example = renderer.all_turns_example(prompt, completion, answer_end)
        else:
            example = {"prompt": prompt, "completion": completion}
            _add_template_kwargs(example, renderer)
        (train if split == "train" else validation).append(example)
    report.train, report.validation = len(train), len(validation)
    report.check()
    return train, validation, report


def dpo_layout(columns: set[str]) -> str:
    if {"prompt", "chosen", "rejected"} <= columns:
        return "trl"
    if {"instruction", "response", "rejected"} <= columns:
        return "dolly"
    raise ConfigError(
        "DPO data needs kodolly's DPO layout (instruction, context, response, rejected) or trl's "
        f"(prompt, chosen, rejected); found {', '.join(sorted(columns))}"
    )


def _assistant(value: Any, marker: str | None) -> list[dict[str, str]] | None:
    """An answer (a string or a message list ending with the assistant turn) as an assistant message list."""
    if isinstance(value, str):
        return [{"role": "assistant", "content": with_answer_end(value, marker)}] if value.strip() else None
    if isinstance(value, list) and value and isinstance(value[-1], dict) and value[-1].get("role") == "assistant":
        msgs = [{"role": m["role"], "content": m["content"]} for m in value]
        if not _text(msgs[-1]["content"]).strip():
            return None
        msgs[-1]["content"] = with_answer_end(msgs[-1]["content"], marker)
        return msgs
    return None


def dpo_examples(rows: list[dict[str, Any]], renderer: PromptRenderer, *, answer_end: str | None,
                 max_prompt_tokens: int | None, long_prompts: str) -> tuple[list[dict], list[dict], DataReport]:
    """Train and validation examples for DPOTrainer, and the report of what happened to every row."""
    report = DataReport(rows=len(rows))
    train: list[dict] = []
    validation: list[dict] = []
    layout = dpo_layout(set(rows[0])) if rows else "dolly"
    for row in rows:
        split = _route(row, report)
        if split is None:
            continue
        if layout == "dolly":
            instruction = _text(row.get("instruction"))
            prompt = row_prompt(row, renderer) if instruction.strip() else None
            chosen_raw = row.get("response")
        else:
            raw_prompt = row.get("prompt")
            if isinstance(raw_prompt, str):
                prompt = renderer.messages(raw_prompt.strip()) if raw_prompt.strip() else None
            elif isinstance(raw_prompt, list) and raw_prompt and all(isinstance(m, dict) for m in raw_prompt):
                prompt = renderer.with_system(raw_prompt)
            else:
                prompt = None
            chosen_raw = row.get("chosen")
        chosen, rejected = _assistant(chosen_raw, answer_end), _assistant(row.get("rejected"), answer_end)
        if prompt is None or chosen is None or rejected is None:
            report.skip("empty_field")
            continue
        if chosen == rejected:
            report.skip("chosen_equals_rejected")
            continue
        prompt, status = renderer.fit(prompt, max_prompt_tokens, long_prompts)
        if prompt is None:
            report.long_prompts_dropped += 1
            continue
        report.long_prompts_cut += status == "cut"
        example = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        _add_template_kwargs(example, renderer)
        (train if split == "train" else validation).append(example)
    report.train, report.validation = len(train), len(validation)
    report.check()
    return train, validation, report


def _add_template_kwargs(example: dict[str, Any], renderer: PromptRenderer) -> None:
    # trl passes a row's ``chat_template_kwargs`` to apply_chat_template (SFT and DPO alike).
    if renderer.template_kwargs:
        example["chat_template_kwargs"] = dict(renderer.template_kwargs)


def to_dataset(examples: list[dict[str, Any]]):
    from ..errors import require

    datasets = require("datasets", "train")
    return datasets.Dataset.from_list(examples)
