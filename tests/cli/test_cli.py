from __future__ import annotations

import click
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from kodolly.cli import cli
from support import FIXTURES


def _all_commands(group: click.Group, prefix=()):
    for name, command in sorted(group.commands.items()):
        yield prefix + (name,)
        if isinstance(command, click.Group):
            yield from _all_commands(command, prefix + (name,))


@pytest.mark.parametrize("path", [()] + list(_all_commands(cli)), ids=lambda p: " ".join(p) or "kodolly")
def test_help_for_every_command(path):
    result = CliRunner().invoke(cli, list(path) + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_formats_lists_converters():
    result = CliRunner().invoke(cli, ["formats"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert "alpaca" in names and "dolly" in names


def test_inspect_names_the_converter_and_shows_a_row():
    result = CliRunner().invoke(cli, ["inspect", str(FIXTURES / "alpaca" / "kullm-v2.jsonl")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith("kullm-v2.jsonl: alpaca")
    assert '"instruction": "건강을 유지하기 위한 세 가지 팁을 알려주세요."' in result.output
    result = CliRunner().invoke(cli, ["inspect", str(FIXTURES / "dolly" / "dolly_ko.jsonl")])
    assert result.output.splitlines()[0].endswith("dolly_ko.jsonl: dolly")


def test_convert_writes_parquet_and_prints_the_tally(tmp_path):
    out = tmp_path / "sample.parquet"
    result = CliRunner().invoke(cli, ["convert", str(FIXTURES / "alpaca"), "--from", "alpaca", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "tally OK: read 14 = written 13 + rejected 1" in result.output
    assert "empty_field:response" in result.output
    assert pq.read_table(out).num_rows == 13


def test_convert_auto_detects_the_converter(tmp_path):
    result = CliRunner().invoke(cli, ["convert", str(FIXTURES / "dolly" / "dolly_ko.jsonl"), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0, result.output
    assert "converter: dolly" in result.output


def test_errors_are_one_line_with_the_file_and_nonzero_exit(tmp_path):
    lfs = FIXTURES / "bad" / "lfs_pointer.json"
    result = CliRunner().invoke(cli, ["convert", str(lfs), "--from", "alpaca", "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"kodolly: error: {lfs}: this is a Git-LFS pointer file, not the data. "
        "Fetch the real file first (git lfs pull, or download it from the dataset page)."
    )
    assert "Traceback" not in result.output

    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "missing.json"), "--from", "alpaca", "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 1
    assert result.output.strip() == f"kodolly: error: {tmp_path / 'missing.json'}: no such file or directory"

    result = CliRunner().invoke(cli, ["convert", str(lfs), "--from", "nope", "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 2
    assert result.output.startswith("kodolly: error: unknown converter 'nope'; known converters:")

    result = CliRunner().invoke(cli, ["convert", str(FIXTURES / "alpaca"), "--from", "alpaca", "-o", str(tmp_path / "o.txt")])
    assert result.exit_code == 2
    assert "cannot tell the output format" in result.output


def test_converter_option_on_the_command_line(tmp_path):
    out = tmp_path / "o.parquet"
    result = CliRunner().invoke(
        cli, ["convert", str(FIXTURES / "alpaca" / "KoAlpaca_v1.1.jsonl"), "--from", "koalpaca", "-O", "license=CC BY-NC 4.0", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert set(pq.read_table(out).column("license").to_pylist()) == {"CC BY-NC 4.0"}
