"""``kodolly train sft``, ``kodolly train dpo`` and ``kodolly generate``: thin shells over kodolly.train."""

from __future__ import annotations

import os

import click

# Options left unset (None) do not override the config file.
_TRAIN_OPTIONS = [
    click.option("--model", "-m", help="Base model: a local folder or a Hub id (or `model` in --config)."),
    click.option("--output", "-o", "output_dir", type=click.Path(), help="Run folder (default: out/sft or out/dpo)."),
    click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                 help="Settings file (.toml/.yaml); command-line options override it."),
    click.option("--system-prompt", help="System prompt put before every question."),
    click.option("--thinking/--no-thinking", default=None,
                 help="Qwen3-style templates: render prompts with thinking on (default: off, enable_thinking=False)."),
    click.option("--answer-end", help="Marker appended to every answer, e.g. '(답변 종료)'; generate stops at it."),
    click.option("--max-prompt-tokens", type=int, help="Longer prompts are dropped or cut (default 1024)."),
    click.option("--long-prompts", type=click.Choice(["drop", "cut"]), help="What to do with long prompts (default drop)."),
    click.option("--loss-on", type=click.Choice(["final", "all-turns"]),
                 help="SFT on conversation rows: loss on the final answer (default) or on every assistant turn."),
    click.option("--4bit/--no-4bit", "load_in_4bit", default=None, help="QLoRA: load the base in 4-bit nf4 (double quant)."),
    click.option("--adapter", type=click.Path(exists=True, file_okay=False),
                 help="Start from this LoRA adapter (e.g. an SFT run folder before DPO)."),
    click.option("--merge/--no-merge", default=None, help="Also write base + adapter merged into OUTPUT/merged."),
    click.option("--lora-r", type=int, help="LoRA rank (default 16)."),
    click.option("--lora-alpha", type=int, help="LoRA alpha (default 16)."),
    click.option("--lora-dropout", type=float, help="LoRA dropout (default 0.05)."),
    click.option("--lora-targets", help="Comma-separated module names, or all-linear (default: attention + MLP projections)."),
    click.option("--seed", type=int, help="Random seed (default 42)."),
    click.option("--wandb/--no-wandb", default=None, help="Log to Weights & Biases (default: no logging service)."),
    click.option("--verbose", is_flag=True, help="Show the libraries' own warnings and progress bars too."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="A trl trainer setting, e.g. --set learning_rate=1e-4 --set num_train_epochs=2 (repeatable)."),
]


def _train_options(fn):
    for option in reversed(_TRAIN_OPTIONS):
        fn = option(fn)
    return fn


def _run(kind: str, data: str | None, opts: dict) -> None:
    from ..train.config import build_config, parse_set
    from ..train.run import train

    targets = opts.pop("lora_targets")
    lora = {
        "r": opts.pop("lora_r"),
        "alpha": opts.pop("lora_alpha"),
        "dropout": opts.pop("lora_dropout"),
        "target_modules": None if targets is None else (targets if targets in ("all-linear", "auto") else [t.strip() for t in targets.split(",") if t.strip()]),
    }
    trainer = parse_set(opts.pop("sets"))
    config_file = opts.pop("config_file")
    verbose = opts.pop("verbose")
    config = build_config(kind, file=config_file, overrides={"data": data, **opts}, lora_overrides=lora, trainer_overrides=trainer)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ..train.progress import quiet_libraries

    with quiet_libraries(verbose):  # the whole command: some libraries print while objects are torn down
        result = train(config, log=click.echo, verbose=verbose)
    if result.merged_dir is not None:
        click.echo(f"merged model: {result.merged_dir}")


@click.group("train")
def train_group() -> None:
    """Fine-tune a model on kodolly output with LoRA/QLoRA (needs kodolly[train])."""


@train_group.command("sft")
@click.argument("data", required=False)
@_train_options
def sft_command(data, **opts) -> None:
    """Supervised fine-tuning on DATA (kodolly rows: parquet, JSONL or a datasets folder).

    Each row's instruction (+ context) is the user turn and its response the assistant turn,
    rendered with the model's chat template; a conversation row's earlier turns (its `messages`)
    come before them as real turns. The loss is on the answers only (--loss-on all-turns: on every
    assistant turn of a conversation).
    """
    _run("sft", data, opts)


@train_group.command("dpo")
@click.argument("data", required=False)
@_train_options
def dpo_command(data, **opts) -> None:
    """DPO on DATA (kodolly DPO rows, or trl's prompt/chosen/rejected); beta 0.1, max length 1536."""
    _run("dpo", data, opts)


@click.command("generate")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("question")
@click.option("--context", default="", help="Context text, placed after the question as in training.")
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--sample/--greedy", default=False, help="Sample instead of greedy decoding.")
@click.option("--temperature", type=float, help="Sampling temperature (with --sample).")
@click.option("--top-p", type=float, help="Nucleus sampling (with --sample).")
@click.option("--base-model", help="Base model for an adapter folder (default: the one it was trained on).")
@click.option("--4bit", "load_in_4bit", is_flag=True, help="Load the base model in 4-bit.")
@click.option("--verbose", is_flag=True, help="Show the libraries' own warnings too.")
def generate_command(model_dir, question, context, max_new_tokens, sample, temperature, top_p, base_model, load_in_4bit, verbose) -> None:
    """Answer QUESTION with the tuned model in MODEL_DIR (a run folder, merged folder or model)."""
    from ..train.generate import generate
    from ..train.progress import quiet_libraries

    with quiet_libraries(verbose):
        answer = generate(
            model_dir, question, context, base_model=base_model, load_in_4bit=load_in_4bit,
            max_new_tokens=max_new_tokens, do_sample=sample, temperature=temperature, top_p=top_p,
        )
    click.echo(answer)


COMMANDS = [train_group, generate_command]
