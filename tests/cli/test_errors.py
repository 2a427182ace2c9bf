"""The CLI's one error-mapping place: Ctrl-C, a failed write — one line, the exit code, nothing left."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kodolly.cli import cli
from kodolly.converters import Converter
from kodolly.registry import register
from kodolly.rows import make_row


def _interrupts_at_record_30(record, loc, ctx):
    if loc.index == 30:
        raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
    yield make_row(instruction=record["q"], response=record["a"], source=ctx.source, id=str(loc.index))


def test_ctrl_c_is_one_line_exit_130_and_leaves_nothing(tmp_path):
    register(Converter("test_interrupts", "raises KeyboardInterrupt at the 31st record", _interrupts_at_record_30))
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"q": f"질문 {i}", "a": f"답 {i}"}, ensure_ascii=False) + "\n" for i in range(100)), "utf-8")
    out = tmp_path / "o"
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "test_interrupts", "-o", str(out / "x.parquet"), "--no-progress", "--engine", "inline"])
    assert (result.exit_code, result.output) == (130, "kodolly: interrupted\n")
    assert sorted(p.name for p in out.iterdir()) == []


def test_another_run_on_the_same_output_is_one_line(tmp_path):
    from kodolly.io.commit import OutputSet
    from kodolly.io.writers import output_paths

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"instruction": "질문", "output": "답"}, ensure_ascii=False) + "\n", "utf-8")
    with OutputSet(output_paths(tmp_path / "x.parquet", None)):
        result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca", "-o", str(tmp_path / "x.parquet"), "--no-progress"])
    assert (result.exit_code, result.output) == (1, f"kodolly: error: {tmp_path / 'x.parquet'}: another kodolly run is writing this output\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
