"""``kodolly train sft|dpo`` and ``kodolly generate`` through click, in process."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import DPO_ROWS, MARKER
from kodolly.cli import cli


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--help"], "Fine-tune a model on kodolly output"),
        (["train", "sft", "--help"], "Supervised fine-tuning on DATA"),
        (["train", "dpo", "--help"], "DPO on DATA"),
        (["generate", "--help"], "Answer QUESTION with the tuned model"),
    ],
)
def test_help(args, expected):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert expected in result.output
    if args[-2:] in (["sft", "--help"], ["dpo", "--help"]):
        for option in ("--model", "--config", "--4bit", "--answer-end", "--system-prompt", "--set", "--merge", "--adapter"):
            assert option in result.output


def test_sft_then_generate_end_to_end(tiny_model, sft_parquet, tmp_path):
    config = tmp_path / "sft.toml"
    config.write_text(
        f'model = "{tiny_model}"\nanswer_end = "{MARKER}"\n[lora]\nr = 8\n'
        "[trainer]\nlearning_rate = 1e-3\nper_device_train_batch_size = 6\nlogging_steps = 10\n"
        "activation_checkpointing = false\ndisable_tqdm = true\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["train", "sft", str(sft_parquet), "--config", str(config), "-o", str(out), "--lora-r", "16",
         "--set", "learning_rate=1e-2", "--set", "max_steps=60"],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "data: 6 rows, train 6, validation 0, long prompts dropped 0"
    steps = [line for line in lines if line.startswith("step ")]
    assert [line.split("  ")[0] for line in steps] == [f"step {n}/60" for n in (10, 20, 30, 40, 50, 60)]
    assert all("  loss " in line and "  lr " in line for line in steps)
    summary = lines[-1]
    assert summary.startswith("trained 60 steps in ") and summary.endswith(f"; adapter in {out}")
    first, last = (float(x) for x in summary.split("; loss ")[1].split(";")[0].split(" → "))
    assert last < first
    assert not [line for line in lines if "Warning" in line or "{'loss'" in line or "it/s" in line]
    run = json.loads((out / "kodolly_train.json").read_text(encoding="utf-8"))
    # Command line over file over defaults.
    assert run["settings"]["lora"]["r"] == 16 and run["trainer_args"]["learning_rate"] == 1e-2
    assert run["trainer_args"]["per_device_train_batch_size"] == 6 and run["settings"]["answer_end"] == MARKER

    answer = runner.invoke(cli, ["generate", str(out), "바다는 무슨 맛인가요?", "--max-new-tokens", "40"])
    assert answer.exit_code == 0, answer.output
    assert answer.stdout == "바닷물은 짠맛이 납니다.\n"


def test_dpo_reports_dropped_long_prompts(tiny_model, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["train", "dpo", str(DPO_ROWS), "--model", str(tiny_model), "-o", str(tmp_path / "dpo"),
         "--max-prompt-tokens", "16", "--set", "max_steps=1", "--set", "activation_checkpointing=false",
         "--set", "disable_tqdm=true"],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "data: 5 rows, train 2, validation 1, long prompts dropped 2"
    assert "validation loss: " in result.output
    # one step, below logging_steps: the last step is logged all the same, so the run reports a loss
    assert [line.split("  ")[0] for line in lines if line.startswith("step ")] == ["step 1/1"]
    assert lines[-1].startswith("trained 1 step in ") and "no loss logged" not in lines[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "sft", "x.parquet"], "kodolly: error: no base model"),
        (["train", "sft", "--model", "m"], "kodolly: error: no training data"),
        (["train", "dpo", "missing.parquet", "--model", "m"], "kodolly: error: missing.parquet: no such file or folder"),
        (["train", "sft", "x.parquet", "--model", "m", "--set", "oops"], "kodolly: error: --set 'oops': expected KEY=VALUE"),
    ],
)
def test_errors_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_unknown_trainer_setting_is_a_config_error(tiny_model, sft_parquet, tmp_path):
    result = CliRunner().invoke(
        cli, ["train", "sft", str(sft_parquet), "--model", str(tiny_model), "-o", str(tmp_path / "r"),
              "--set", "warmup_ratio=0.1"],
    )
    assert result.exit_code == 2
    assert "trainer setting not accepted by trl's SFTConfig" in result.output and "warmup_ratio" in result.output


def test_missing_training_extra_names_the_pip_line(sft_parquet, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "trl", None)  # as if trl were not installed
    result = CliRunner().invoke(cli, ["train", "sft", str(sft_parquet), "--model", "m", "-o", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "kodolly: error: trl is not installed; install it with: pip install -e '.[train]' (from the kodolly clone)" in result.output


def test_wandb_only_when_asked_and_installed(tiny_model, sft_parquet, tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real_find_spec(name, *a))
    result = CliRunner().invoke(
        cli, ["train", "sft", str(sft_parquet), "--model", str(tiny_model), "-o", str(tmp_path / "r"), "--wandb"]
    )
    assert result.exit_code == 2
    assert "logging to W&B needs the wandb package: pip install wandb" in result.output
