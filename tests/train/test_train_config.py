"""kodolly.train.config: defaults, file + override precedence, the trainer table passed to trl."""

from __future__ import annotations

import pytest

from kodolly.errors import ConfigError
from kodolly.train.config import build_config, parse_set


def test_defaults_follow_the_spec():
    config = build_config("sft", overrides={"model": "m", "data": "d"})
    assert (config.lora.r, config.lora.alpha, config.lora.dropout, config.lora.target_modules) == (16, 16, 0.05, "auto")
    assert config.max_prompt_tokens == 1024 and config.long_prompts == "drop"
    assert config.output_dir.endswith("sft") and not config.load_in_4bit and not config.thinking
    dpo = build_config("dpo", overrides={"model": "m", "data": "d"}).trainer_kwargs(on_cpu=False)
    assert dpo["beta"] == 0.1 and dpo["max_length"] == 1536 and dpo["report_to"] == "none"
    assert "use_cpu" not in dpo and "bf16" not in dpo


def test_cpu_turns_off_mixed_precision_and_wandb_only_when_asked():
    config = build_config("sft", overrides={"model": "m", "data": "d"})
    kwargs = config.trainer_kwargs(on_cpu=True)
    assert kwargs["use_cpu"] is True and kwargs["bf16"] is False and kwargs["fp16"] is False
    assert kwargs["report_to"] == "none"
    assert build_config("sft", overrides={"model": "m", "data": "d", "wandb": True}).trainer_kwargs(True)["report_to"] == "wandb"


def test_toml_file_then_command_line_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'model = "from-file"\nanswer_end = "(끝)"\nsystem_prompt = "친절하게"\n'
        "[lora]\nr = 8\n[trainer]\nlearning_rate = 1e-4\nnum_train_epochs = 3\n",
        encoding="utf-8",
    )
    config = build_config(
        "sft", file=path, overrides={"data": "d", "answer_end": "(답변 종료)", "model": None},
        lora_overrides={"alpha": 32, "r": None}, trainer_overrides=parse_set(["learning_rate=5e-5", "optim=adamw_torch"]),
    )
    assert config.model == "from-file" and config.answer_end == "(답변 종료)" and config.system_prompt == "친절하게"
    assert (config.lora.r, config.lora.alpha) == (8, 32)
    kwargs = config.trainer_kwargs(on_cpu=True)
    assert kwargs["learning_rate"] == 5e-5 and kwargs["num_train_epochs"] == 3 and kwargs["optim"] == "adamw_torch"
    assert kwargs["output_dir"] == config.output_dir


def test_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: m\nload_in_4bit: true\ntrainer:\n  beta: 0.2\n", encoding="utf-8")
    config = build_config("dpo", file=path, overrides={"data": "d"})
    assert config.load_in_4bit is True and config.trainer_kwargs(on_cpu=False)["beta"] == 0.2


def test_trainer_settings_outside_the_trainer_table_are_refused(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('model = "m"\nlearning_rate = 1e-4\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) learning_rate.*\[trainer\]"):
        build_config("sft", file=path, overrides={"data": "d"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data": "d"}, "no base model"),
        ({"model": "m", "long_prompts": "keep"}, "'drop' or 'cut'"),
        ({"model": "m", "max_prompt_tokens": 0}, "must be positive"),
        ({"model": "m", "answer_end": "  "}, "must not be blank"),
        ({"model": "m", "loss_on": "every"}, "loss_on must be 'final' or 'all-turns'"),
    ],
)
def test_bad_settings(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config("sft", overrides=overrides)


def test_parse_set_reads_json_values_else_text():
    assert parse_set(["a=1", "b=true", "c=cosine", "d=[1,2]"]) == {"a": 1, "b": True, "c": "cosine", "d": [1, 2]}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["novalue"])


def test_loss_on_is_an_sft_setting():
    assert build_config("sft", overrides={"model": "m"}).loss_on == "final"
    assert build_config("sft", overrides={"model": "m", "loss_on": "all-turns"}).loss_on == "all-turns"
    with pytest.raises(ConfigError, match="loss_on is an SFT setting"):
        build_config("dpo", overrides={"model": "m", "loss_on": "all-turns"})
