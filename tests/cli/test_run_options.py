import json

import pyarrow.parquet as pq
from click.testing import CliRunner

from kodolly.cli import cli
from support import REFERENCE_IDS, REFERENCE_SOURCES


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_convert_help_lists_the_filter_options():
    result = _run("convert", "--help")
    assert result.exit_code == 0
    for option in ("--config", "--input", "--min-score", "--keep-unscored", "--exclude-domain", "--include-category",
                   "--min-chars", "--max-chars", "--min-hangul", "--dedup / --no-dedup", "--dedup-key", "--near-dup",
                   "--split"):
        assert option in result.output


def test_dedup_is_on_by_default_and_can_be_turned_off(fixtures, tmp_path):
    src = fixtures / "filters" / "dedup_variants.jsonl"
    result = _run("convert", src, "--from", "alpaca", "-o", tmp_path / "a.parquet")
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 4
    assert "duplicate_of" in result.output and "example rejects" in result.output
    assert "v2 [duplicate_of:v1]" in result.output
    result = _run("convert", src, "--from", "alpaca", "-o", tmp_path / "b.parquet", "--no-dedup")
    assert result.exit_code == 0
    assert pq.read_table(tmp_path / "b.parquet").num_rows == 9


def test_every_filter_option_on_the_command_line(fixtures, tmp_path, scored_converter):
    out = tmp_path / "all.parquet"
    result = _run(
        "convert", fixtures / "filters" / "all_reasons.jsonl", "--from", "test_scored", "-o", out,
        "--min-score", "30", "--include-category", "open_qa,closed_qa", "--include-category", "brainstorming",
        "--exclude-category", "brainstorming", "--include-domain", "사회,자연,예체능", "--exclude-domain", "예체능",
        "--min-chars", "2", "--max-chars", "total=200", "--min-hangul", "response=0.5",
        "--dedup-key", "instruction,context,response", "--near-dup", "0.7", "--split", "train=0.5,validation=0.25,test=0.25",
    )
    assert result.exit_code == 0, result.output
    assert "tally OK: read 19 = written 3 + rejected 16" in result.output
    manifest = json.loads((tmp_path / "all.manifest.json").read_text("utf-8"))
    settings = {f["name"]: f["settings"] for f in manifest["filters"]}
    assert settings["category"] == {"include": ["open_qa", "closed_qa", "brainstorming"], "exclude": ["brainstorming"]}
    assert settings["content"]["min_chars"] == {"response": 2} and settings["content"]["max_chars"] == {"total": 200}
    assert settings["near_dup"]["threshold"] == 0.7
    report = json.loads((tmp_path / "all.report.json").read_text("utf-8"))
    assert report["counts"]["by_reason"]["near_duplicate_of"] == 1


def test_several_inputs_with_different_converters(fixtures, tmp_path):
    result = _run(
        "convert", "--input", f"aihub:{fixtures / 'filters' / 'aihub_sft_sample.json'}",
        "--input", f"qa:{fixtures / 'filters' / 'user_scored.csv'}",
        "--min-score", "30", "--keep-unscored", "--exclude-domain", "예체능,종교,보건", "--split", "train=0.8,validation=0.1,test=0.1",
        "-o", tmp_path / "ko.parquet",
    )
    assert result.exit_code == 0, result.output
    assert "tally OK: read 22 = written 10 + rejected 12" in result.output
    assert f"{'qa':<20}{'domain_excluded':<40}{2:>10}" in result.output
    assert f"{'':<20}{'score_below':<40}{2:>10}" in result.output
    manifest = json.loads((tmp_path / "ko.manifest.json").read_text("utf-8"))
    assert manifest["counts"]["sources"] == REFERENCE_SOURCES  # the same run as the API's reference workflow
    assert pq.read_table(tmp_path / "ko.parquet").column("id").to_pylist() == REFERENCE_IDS


def test_mapped_csv_first_keeps_its_rows_over_later_duplicates(fixtures, tmp_path):
    """The user's CSV mapped with --map, read before the AI Hub labels: now the AI Hub copies are the duplicates."""
    result = _run(
        "convert", fixtures / "filters" / "user_scored.csv",
        "--map", "instruction=question", "--map", "response=answer", "--map", "domain=category", "--map", "score=score",
        "--input", f"aihub:{fixtures / 'filters' / 'aihub_sft_sample.json'}",
        "--min-score", "30", "--keep-unscored", "--exclude-domain", "예체능,종교,보건", "--split", "train=0.8,validation=0.1,test=0.1",
        "-o", tmp_path / "ko.parquet",
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "ko.manifest.json").read_text("utf-8"))
    assert manifest["counts"]["sources"] == {
        "mapped": {"read": 11, "written": 7, "rejected": 4, "by_reason": {"domain_excluded": 2, "score_below": 2}},
        "aihub": {"read": 11, "written": 3, "rejected": 8,
                  "by_reason": {"answer_equals_question": 1, "domain_excluded": 3, "duplicate_of": 3, "no_answer": 1}},
    }
    rejects = [json.loads(line) for line in (tmp_path / "ko.rejects.jsonl").read_text("utf-8").splitlines()]
    assert {r["id"]: r["reason"] for r in rejects if r["reason"].startswith("duplicate_of:")} == {
        "a01": "duplicate_of:user_scored.csv:4", "a08": "duplicate_of:user_scored.csv:4", "a10": "duplicate_of:user_scored.csv:9",
    }
    assert pq.read_table(tmp_path / "ko.parquet").column("id").to_pylist() == [
        "user_scored.csv:0", "user_scored.csv:2", "user_scored.csv:4", "user_scored.csv:6", "user_scored.csv:7",
        "user_scored.csv:8", "user_scored.csv:9", "a05", "a07", "a09",
    ]


def test_config_file_with_command_line_override(fixtures, tmp_path):
    for name in ("reference_run.toml", "aihub_sft_sample.json", "user_scored.csv"):
        (tmp_path / name).write_bytes((fixtures / "filters" / name).read_bytes())
    result = _run("convert", "--config", tmp_path / "reference_run.toml", "--min-score", "50", "-o", tmp_path / "x.jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text("utf-8").splitlines()]
    scores = [r["score"] for r in rows if r["source"] == "qa"]
    assert scores == [None, 55.5, 70.0]  # keep_unscored from the file, min 50 from the command line
    assert not (tmp_path / "out").exists()  # -o replaced the file's output


def test_bad_options_exit_2_with_one_line(fixtures, tmp_path):
    src = fixtures / "filters" / "dedup_variants.jsonl"
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca", "-o", str(tmp_path / "o.parquet"), "--split", "train=0.9"])
    assert result.exit_code == 2 and "split ratios add up to 0.9" in result.output
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca"])
    assert result.exit_code == 2 and "no output" in result.output
    result = CliRunner().invoke(cli, ["convert", "--input", "alpaca", "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 2 and "expected NAME:PATH" in result.output
