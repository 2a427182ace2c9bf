"""CLI: ``kodolly publish``, ``kodolly push``, ``kodolly export``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kodolly.cli import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
from hub_server import HubServer  # noqa: E402
from hubtools import FIXTURES, TOKEN, folder_bytes  # noqa: E402


@pytest.mark.parametrize("command", ["publish", "push", "export"])
def test_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert f"Usage: cli {command}" in result.output or f"Usage: kodolly {command}" in result.output


def test_push_help_names_the_override_and_the_token_variable():
    text = CliRunner().invoke(cli, ["push", "--help"]).output
    assert "--i-have-permission" in text and "HF_TOKEN" in text


@pytest.fixture
def local_hub(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with HubServer(TOKEN) as server:
        yield server


def test_publish_then_push_from_the_command_line(tmp_path, local_hub):
    runner = CliRunner()
    mixed = tmp_path / "mixed_rows.jsonl"
    mixed.write_bytes((FIXTURES / "mixed_rows.jsonl").read_bytes())
    mixed.with_name("mixed_rows.manifest.json").write_bytes((FIXTURES / "mixed_rows.manifest.json").read_bytes())
    folder = tmp_path / "hub"

    result = runner.invoke(cli, ["publish", str(mixed), "-o", str(folder), "--max-shard-rows", "4", "--repo-id", "me/ko"])
    assert result.exit_code == 0, result.output
    assert "train                6 rows  2 shard(s)" in result.stdout
    assert "source korquad1: CC BY-ND 2.0 KR (3 rows) [no-derivatives]" in result.stdout
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00002.parquet", "train-00001-of-00002.parquet",
        "validation-00000-of-00001.parquet"]

    env = {"HF_TOKEN": TOKEN}
    args = ["push", str(folder), "me/ko", "--endpoint", local_hub.base_url, "--retry-wait", "0.01"]
    refused = runner.invoke(cli, args + ["--public"], env=env)
    assert refused.exit_code == 4
    assert refused.stderr.startswith("kodolly: error: refusing a public push")
    assert "korquad1 (CC BY-ND 2.0 KR, 3 rows)" in refused.stderr and "--i-have-permission" in refused.stderr
    assert local_hub.state.requests == []

    private = runner.invoke(cli, args, env=env)
    assert private.exit_code == 0, private.output
    assert "kodolly: warning: private push of restricted sources" in private.stderr
    assert f"pushed 6 files to {local_hub.base_url}/datasets/me/ko, private" in private.stdout
    assert local_hub.state.repos["me/ko"].branches["main"] == folder_bytes(folder)
    assert TOKEN not in private.stdout + private.stderr + refused.stdout + refused.stderr

    overridden = runner.invoke(cli, args + ["--public", "--i-have-permission", "--revision", "public"], env=env)
    assert overridden.exit_code == 0, overridden.output
    assert local_hub.state.repos["me/ko"].branches["public"] == folder_bytes(folder)


def test_push_without_token_fails_cleanly(tmp_path, local_hub):
    folder = tmp_path / "hub"
    (folder / "data").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["push", str(folder), "me/ko", "--endpoint", local_hub.base_url], env={"HF_TOKEN": ""})
    assert result.exit_code == 5
    assert "no Hub token: export HF_TOKEN or run `hf auth login`" in result.stderr


def test_export_prints_the_dataset_info_entry(tmp_path):
    dest = tmp_path / "ko.jsonl"
    result = CliRunner().invoke(cli, ["export", str(FIXTURES / "dpo_pairs.jsonl"), "-o", str(dest), "--to", "llamafactory"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)
    assert entry["ko"]["ranking"] is True
    assert f"wrote {dest} (2 rows, llamafactory preference, jsonl)" in result.stderr
    assert json.loads((tmp_path / "dataset_info.json").read_text("utf-8")) == entry


def test_token_stays_out_of_debug_logs_of_a_real_process(tmp_path, local_hub):
    """The whole CLI in a child process, with huggingface_hub's debug logging on."""
    import os
    import subprocess

    from kodolly.hub import build_folder

    out = tmp_path / "ko.jsonl"
    out.write_bytes((FIXTURES / "dpo_pairs.jsonl").read_bytes())
    out.with_name("ko.manifest.json").write_bytes((FIXTURES / "dpo_pairs.manifest.json").read_bytes())
    folder = tmp_path / "hub"
    build_folder(out, folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update({"HF_TOKEN": TOKEN, "HF_ENDPOINT": local_hub.base_url, "HF_HUB_DISABLE_XET": "1", "HF_DEBUG": "1",
                "HF_HUB_VERBOSITY": "debug", "HF_HOME": str(tmp_path / "hf-home")})
    proc = subprocess.run([sys.executable, "-m", "kodolly", "push", str(folder), "me/dpo"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pushed 4 files" in proc.stdout
    assert "Authorization: Bearer <TOKEN>" in proc.stderr or "authenticated: True" in proc.stderr  # debug logging was on
    assert TOKEN not in proc.stdout + proc.stderr
    assert local_hub.state.repos["me/dpo"].branches["main"] == folder_bytes(folder)
