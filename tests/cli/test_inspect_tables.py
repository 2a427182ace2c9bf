"""``kodolly inspect`` on parquet / Arrow / datasets inputs and on kodolly's own outputs."""

from __future__ import annotations

from click.testing import CliRunner

import kodolly
from columnar_support import write_columnar
from kodolly.cli import cli
from support import FIXTURES


def test_inspect_a_parquet_input_names_the_converter_and_its_columns(tmp_path):
    records = [{"id": "c1", "conversations": [{"from": "human", "value": "안녕"}, {"from": "gpt", "value": "안녕하세요"}]}]
    path = write_columnar(records, tmp_path / "chat", "parquet")
    res = CliRunner().invoke(cli, ["inspect", str(path)])
    assert res.exit_code == 0, res.output
    out = res.output.splitlines()
    assert out[0] == f"{path}: sharegpt"
    assert out[1] == "columns: id: string, conversations: list<element: struct<from: string, value: string>>"


def test_inspect_a_datasets_folder(tmp_path):
    path = write_columnar([{"instruction": "질문", "input": "", "output": "답"}] * 2, tmp_path / "ds", "datasets")
    res = CliRunner().invoke(cli, ["inspect", str(path)])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == f"{path / 'data-00000-of-00002.arrow'}: alpaca"


def test_inspect_a_kodolly_output_says_how_to_read_it_back(tmp_path):
    out = tmp_path / "out.jsonl"
    kodolly.convert(FIXTURES / "alpaca/ko_alpaca_data.json", "koalpaca", out)
    res = CliRunner().invoke(cli, ["inspect", str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[:2] == [
        f"{out}: dolly",
        "a kodolly output: --from dolly reads it back with its ids, licence, domain, score and meta",
    ]
    assert '"license": "CC BY-NC 4.0"' in res.output and '"source": "koalpaca"' in res.output
