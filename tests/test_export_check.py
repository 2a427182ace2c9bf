"""``kodolly export --check``: the export read back the way LLaMA-Factory / axolotl map it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kodolly.cli import cli
from kodolly.errors import ExportCheckError
from kodolly.export import export
from kodolly.export_check import check_export, check_llamafactory

ROOT = Path(__file__).resolve().parents[1]
KOVICUNA = ROOT / "fixtures" / "sharegpt" / "kovicuna_system.json"
MIXED = ROOT / "fixtures" / "hub" / "mixed_rows.jsonl"
DPO = ROOT / "fixtures" / "hub" / "dpo_pairs.jsonl"
CONV = ROOT / "fixtures" / "hub" / "dpo_conversational.jsonl"


@pytest.fixture
def rows(tmp_path):
    from kodolly import api

    out = tmp_path / "rows.jsonl"
    api.convert([KOVICUNA], "kovicuna", out)
    return out


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("target", ["llamafactory", "axolotl"])
@pytest.mark.parametrize("style", ["alpaca", "chat"])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_check_passes_on_every_export_of_the_conversation(rows, tmp_path, target, style, suffix):
    dest = tmp_path / "out" / f"e{suffix}"
    res = _cli("export", rows, "-o", dest, "--to", target, "--style", style, "--check")
    assert res.exit_code == 0, res.output
    assert f"check: {dest} loads in {target}: 4 rows" in res.output


@pytest.mark.parametrize("source", [MIXED, DPO, CONV])
@pytest.mark.parametrize("target", ["llamafactory", "axolotl"])
def test_check_passes_on_single_turn_and_preference_exports(tmp_path, source, target):
    result = export(source, tmp_path / "x.jsonl", target=target, split="all")
    assert check_export(result) == result.rows


def test_axolotl_snippet_names_the_file_by_its_absolute_path(rows, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _cli("export", rows, "-o", "rel/chat.jsonl", "--to", "axolotl", "--style", "chat")
    assert res.exit_code == 0
    assert f"path: {tmp_path / 'rel' / 'chat.jsonl'}" in res.output


@pytest.mark.parametrize("breakage, message", [
    (lambda e: e["tags"].update(user_tag="user"), "row 1: turn 0 has role 'human' where 'observation' or 'user' belongs (role_tag 'from')"),
    (lambda e: e["columns"].update(messages="conversation"), "row 1: no turns in column 'conversation'"),
    (lambda e: e["tags"].update(content_tag="content"), "row 1: turn 0 is empty (content_tag 'content')"),
    (lambda e: e["columns"].pop("system"), "row 1: column 'system' is not in the entry's columns"),
])
def test_check_fails_with_one_line_on_a_broken_dataset_info_entry(rows, tmp_path, breakage, message):
    dest = tmp_path / "lf" / "chat.jsonl"
    assert _cli("export", rows, "-o", dest, "--to", "llamafactory", "--style", "chat", "--check").exit_code == 0
    info = tmp_path / "lf" / "dataset_info.json"
    entries = json.loads(info.read_text("utf-8"))
    breakage(entries["chat"])
    info.write_text(json.dumps(entries), "utf-8")
    res = _cli("export", "-o", dest, "--to", "llamafactory", "--check")
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kodolly: error: {dest}: "), res.output
    assert message in lines[0]


def test_check_fails_on_an_alpaca_entry_naming_a_missing_column(rows, tmp_path):
    dest = tmp_path / "a.jsonl"
    export(rows, dest, target="llamafactory", style="alpaca")
    info = tmp_path / "dataset_info.json"
    entries = json.loads(info.read_text("utf-8"))
    entries["a"]["columns"]["response"] = "answer"
    info.write_text(json.dumps(entries), "utf-8")
    with pytest.raises(ExportCheckError, match=r"row 1: no column 'answer' \(response\)"):
        check_llamafactory(info, "a")


def test_check_only_for_axolotl_reads_the_yaml(rows, tmp_path):
    import yaml

    res = _cli("export", rows, "-o", tmp_path / "c.jsonl", "--to", "axolotl", "--style", "chat")
    config = tmp_path / "axolotl.yaml"
    config.write_text(res.stdout, "utf-8")
    assert _cli("export", "-o", tmp_path / "c.jsonl", "--to", "axolotl", "--check", "--config", config).exit_code == 0
    data = yaml.safe_load(res.stdout)
    data["datasets"][0]["roles"] = {"user": ["human"], "assistant": ["gpt"]}
    config.write_text(yaml.safe_dump(data), "utf-8")
    res = _cli("export", "-o", tmp_path / "c.jsonl", "--to", "axolotl", "--check", "--config", config)
    assert res.exit_code != 0 and len(res.output.strip().splitlines()) == 1
    assert "row 1: message 0 has role 'system', which the roles mapping does not name" in res.output
    assert _cli("export", "-o", tmp_path / "c.jsonl", "--to", "axolotl").exit_code == 2  # neither OUTPUT nor --check
