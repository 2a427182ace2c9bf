"""``kodolly head`` (cli/head.py, api.head): the first records of inputs and outputs, as a converter reads them."""

from __future__ import annotations

import json

from click.testing import CliRunner

import kodolly
from columnar_support import write_columnar
from kodolly.cli import cli
from support import FIXTURES


def run(*args):
    return CliRunner().invoke(cli, ["head", *map(str, args)])


def lines(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_head_of_a_jsonl_input_shows_its_records_and_their_lines():
    res = run(FIXTURES / "sharegpt/ko_dataset.jsonl", "-n", "2")
    assert res.exit_code == 0, res.output
    got = lines(res)
    assert got[0] == {"id": "anNvbmw_0", "conversations": [{"from": "human", "value": "JSONL 한 줄짜리 대화"}, {"from": "gpt", "value": "네, 한 줄입니다."}]}
    assert got[1]["reason"] == "bad_json" and got[1]["raw"] == '{"id": "broken", "conversations": ['
    assert res.stderr.splitlines() == [
        f"# {FIXTURES / 'sharegpt/ko_dataset.jsonl'}: line 1",
        f"# {FIXTURES / 'sharegpt/ko_dataset.jsonl'}: line 2 rejected: bad_json",
    ]


def test_head_of_an_envelope_shows_the_records_where_the_converter_finds_them():
    res = run(FIXTURES / "korquad1/KorQuAD_v1.0_dev_sample.json", "-n", "1")
    assert res.exit_code == 0, res.output
    (article,) = lines(res)
    assert article["title"] == "파우스트_서곡" and isinstance(article["paragraphs"], list)


def test_head_rows_shows_the_converted_rows():
    res = run(FIXTURES / "alpaca/kullm-v2.jsonl", "-n", "2", "--rows", "--from", "kullm")
    assert res.exit_code == 0, res.output
    got = lines(res)
    assert [(r["id"], r["source"], r["license"]) for r in got] == [("alpaca_{0}", "kullm", "Apache-2.0"), ("dolly_{1}", "kullm", "Apache-2.0")]


def test_head_of_parquet_arrow_and_a_datasets_folder(tmp_path):
    records = [{"instruction": f"질문 {i}", "output": f"답 {i}"} for i in range(5)]
    for kind in ("parquet", "arrow-stream", "datasets"):
        path = write_columnar(records, tmp_path / kind, kind, rows_per_group=2)
        res = run(path, "-n", "3")
        assert res.exit_code == 0, res.output
        assert lines(res) == records[:3], kind


def test_head_of_a_kodolly_output_shows_the_rows_as_written(tmp_path):
    out = tmp_path / "out.parquet"
    kodolly.convert(FIXTURES / "alpaca/kullm-v2.jsonl", "alpaca", out)
    res = run(out, "-n", "1")
    assert res.exit_code == 0, res.output
    (row,) = lines(res)
    assert row["id"] == "alpaca_{0}" and row["split"] == "train"
    assert json.loads(row["meta"]) == {"file": str(FIXTURES / "alpaca/kullm-v2.jsonl"), "line": 1}  # a JSON string, as stored
    assert res.stderr.strip() == f"# {out}: record 0"


def test_head_of_a_broken_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    res = run(bad)
    assert res.exit_code == 1
    assert res.stderr.strip() == f"kodolly: error: {bad}: not a readable parquet file (Parquet magic bytes not found in footer. Either the file is corrupted or this is not a parquet file.)"
