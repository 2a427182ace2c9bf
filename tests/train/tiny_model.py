"""Build a tiny Llama-style model and a character-level tokenizer with a chat template, offline.

Used by the training tests (no download from the Hub) and by the README's example run::

    python tests/train/tiny_model.py out/tiny-llama fixtures/train/dolly_ko.jsonl

The tokenizer has one token per character seen in the given files (plus printable ASCII and
the characters of the answer-end marker), special tokens ``<s> </s> <pad> <unk>`` and one token
per chat role; its chat template ends every assistant turn with ``</s>``. The model's weights are
random (seeded): it knows nothing until trained.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "<|{{ m['role'] }}|>{{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# The same template with Qwen3's switch, rendered as Qwen3's own template does: an assistant turn in
# the conversation opens with an (empty) think block, and ``enable_thinking=False`` puts that empty
# block into the generation prompt, so a prompt is a prefix of prompt + answer.
THINKING_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "<|{{ m['role'] }}|>{% if m['role'] == 'assistant' %}<think></think>{% endif %}"
    "{{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>"
    "{% if enable_thinking is defined and enable_thinking is false %}<think></think>{% endif %}{% endif %}"
)

BASE_CHARS = string.printable + "(답변 종료)<>/" + "한국어질문답변"


def build_tokenizer(text: str, chat_template: str = CHAT_TEMPLATE):
    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(text) | set(BASE_CHARS))
    vocab = {tok: i for i, tok in enumerate(SPECIALS + [c for c in chars if c not in SPECIALS])}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        chat_template=chat_template,
    )


def build_model(tokenizer, *, hidden: int = 64, layers: int = 2, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=0.1,  # peakier logits than 0.02, so LoRA alone can drive the loss near zero
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def build_tiny(out_dir: str | Path, text: str, chat_template: str = CHAT_TEMPLATE, seed: int = 0) -> Path:
    """Write a tiny model + tokenizer covering ``text``'s characters to ``out_dir``."""
    out = Path(out_dir)
    tokenizer = build_tokenizer(text, chat_template)
    model = build_model(tokenizer, seed=seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python tests/train/tiny_model.py OUT_DIR TEXT_FILE...")
    text = "".join(Path(p).read_text(encoding="utf-8") for p in argv[1:])
    out = build_tiny(argv[0], text)
    print(f"wrote a tiny Llama-style model and tokenizer to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
