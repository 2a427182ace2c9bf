import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from kodolly import api
from kodolly import config as run_config
from kodolly.cli import cli
from kodolly.errors import ConfigError
from support import REFERENCE_IDS, REFERENCE_SOURCES


def _copy_fixture_dir(fixtures, tmp_path):
    for name in ("reference_run.toml", "aihub_sft_sample.json", "user_scored.csv"):
        (tmp_path / name).write_bytes((fixtures / "filters" / name).read_bytes())
    return tmp_path / "reference_run.toml"


def test_config_file_runs_the_reference_workflow(fixtures, tmp_path):
    path = _copy_fixture_dir(fixtures, tmp_path)
    result = api.run_config(path)
    assert result.output == tmp_path / "out" / "ko-dolly.parquet"  # relative to the config file
    assert (result.tally.read, result.tally.written, result.tally.rejected) == (22, 10, 12)
    assert result.tally.as_dict()["sources"] == REFERENCE_SOURCES  # the real aihub converter and the qa layout
    assert pq.read_table(result.output).column("id").to_pylist() == REFERENCE_IDS
    manifest = json.loads(result.manifest.read_text("utf-8"))
    assert [g["converter"] for g in manifest["groups"]] == ["aihub", "qa"]
    assert {f["name"]: f["settings"] for f in manifest["filters"]}["score"]["keep_unscored"] is True
    assert result.report == tmp_path / "out" / "ko-dolly.report.json" and result.report.exists()


def test_kodolly_convert_config_runs_the_reference_workflow(fixtures, tmp_path):
    path = _copy_fixture_dir(fixtures, tmp_path)
    result = CliRunner().invoke(cli, ["convert", "--config", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "tally OK: read 22 = written 10 + rejected 12" in result.output
    out = tmp_path / "out" / "ko-dolly.parquet"
    assert f"wrote {out} (10 rows)" in result.output
    manifest = json.loads((tmp_path / "out" / "ko-dolly.manifest.json").read_text("utf-8"))
    assert manifest["counts"]["sources"] == REFERENCE_SOURCES
    assert pq.read_table(out).column("id").to_pylist() == REFERENCE_IDS
    rejects = [json.loads(line) for line in (tmp_path / "out" / "ko-dolly.rejects.jsonl").read_text("utf-8").splitlines()]
    assert len(rejects) == 12 and all(r["file"].endswith((".json", ".csv")) and r["index"] is not None for r in rejects)


def test_overrides_replace_settings_of_the_file(fixtures, tmp_path):
    path = _copy_fixture_dir(fixtures, tmp_path)
    result = api.run_config(path, overrides={"filters": {"score": {"keep_unscored": False}}, "dedup": {"enabled": False},
                                             "split": {"train": 1.0}})
    by_reason = dict(result.tally.by_reason)
    # the 9 AI Hub rows the converter makes (none has a score) and one CSV row without a score
    assert by_reason["no_score"] == 10 and "duplicate_of" not in by_reason
    assert by_reason["answer_equals_question"] == by_reason["no_answer"] == 1  # rejected by the converter, before any filter
    assert [f["name"] for f in result.manifest_data["filters"]] == ["score", "domain", "content", "split"]


def test_merge_replaces_lists_and_split_but_merges_tables():
    base = {"filters": {"domain": {"exclude": ["a"]}, "score": {"min": 1}}, "split": {"train": 0.8, "test": 0.2}}
    merged = run_config.merge(base, {"filters": {"domain": {"exclude": ["b"]}}, "split": {"train": 1.0}})
    assert merged == {"filters": {"domain": {"exclude": ["b"]}, "score": {"min": 1}}, "split": {"train": 1.0}}


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[inputs]]\nfrom = "alpaca"\n', "is not valid under any of the given schemas"),
        ('[[inputs]]\nfrom = "alpaca"\npath = "x"\n[filters.scor]\nmin = 3\n', "Additional properties"),
        ('[split]\ntrain = "most"\n', "split/train"),
        ("[output\n", "not a valid TOML file"),
    ],
)
def test_bad_config_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=message):
        api.run_config(path)


def test_config_without_inputs_is_a_config_error():
    with pytest.raises(ConfigError, match="no inputs"):
        run_config.from_dict({"output": {"path": "x.parquet"}})


def test_auto_converter_in_a_config(fixtures, tmp_path):
    cfg = run_config.from_dict({"inputs": [{"from": "auto", "path": str(fixtures / "filters" / "near_dup_pairs.jsonl")}]})
    assert cfg.inputs[0].converter == "alpaca"


def test_an_input_may_name_a_converter_object(fixtures):
    from kodolly.layouts import mapped_converter

    conv = mapped_converter({"instruction": "question", "response": "answer", "domain": "category", "score": "score"})
    cfg = run_config.from_dict({"inputs": [{"from": conv, "path": str(fixtures / "filters" / "user_scored.csv")}]})
    assert cfg.inputs[0].converter is conv


def test_the_schema_is_valid_and_the_fixture_config_passes_it(fixtures):
    import tomllib

    import jsonschema

    from kodolly.manifest import load_schema

    jsonschema.Draft202012Validator.check_schema(load_schema("run-config"))
    run_config.validate(tomllib.loads((fixtures / "filters" / "reference_run.toml").read_text("utf-8")))


def test_the_readme_example_config_is_valid(fixtures):
    import re
    import tomllib

    from support import readme_section

    text = readme_section("Filters, deduplication")
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    data = tomllib.loads(block)
    run_config.validate(data)
    from kodolly.filters import build_filters

    assert [f.name for f in build_filters(run_config.from_dict(
        dict(data, inputs=[{"from": "alpaca", "path": "x.json"}])).filters)] == [
        "score", "domain", "content", "dedup", "near_dup", "split"]


# ------------------------------------------------------------------ [limits]: the input limits in the file


def _limited_run(tmp_path, limits_table: str):
    """A run config over one JSONL file: a plain record, one nested 5 deep, one of 2 MiB."""
    records = [
        {"instruction": "질문 0", "output": "답변 0"},
        {"instruction": "깊다", "output": "답", "extra": {"a": {"b": {"c": {"d": 1}}}}},  # 5 levels deep
        {"instruction": "크다", "output": "가" * (700 << 10)},  # ~2.1 MB of UTF-8
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    path = tmp_path / "run.toml"
    path.write_text(f'[[inputs]]\nfrom = "alpaca"\npath = "in.jsonl"\n\n[output]\npath = "out.parquet"\n\n{limits_table}', "utf-8")
    return path


def _rejects(tmp_path):
    lines = (tmp_path / "out.rejects.jsonl").read_text("utf-8").splitlines()
    return [(r["reason"], r["index"]) for r in map(json.loads, lines)]


def test_limits_table_sets_the_input_limits_of_the_run(tmp_path):
    from kodolly.io.limits import DEFAULT

    path = _limited_run(tmp_path, "[limits]\nmax_depth = 4\nmax_record_mb = 2\n")
    result = api.run_config(path)
    assert (result.tally.read, result.tally.written, result.tally.rejected) == (3, 1, 2)
    assert _rejects(tmp_path) == [("too_deep", 1), ("record_too_large", 2)]
    assert pq.read_table(result.output).column("instruction").to_pylist() == ["질문 0"]
    assert result.manifest_data["run_spec"]["limits"] == {
        "max_depth": 4, "max_record_bytes": 2 << 20, "max_expansion": DEFAULT.max_expansion,
        "expansion_floor": DEFAULT.expansion_floor, "head_bytes": DEFAULT.head_bytes}
    # without the table the defaults (128 levels, 64 MiB) keep every record
    result = api.run_config(_limited_run(tmp_path, ""))
    assert (result.tally.written, result.tally.rejected) == (3, 0)
    assert result.manifest_data["run_spec"]["limits"] is None


def test_limit_options_on_the_command_line_replace_the_files_keys_one_by_one(tmp_path):
    path = _limited_run(tmp_path, "[limits]\nmax_depth = 4\nmax_record_mb = 1\n")
    result = CliRunner().invoke(cli, ["convert", "--config", str(path), "--max-depth", "6"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "tally OK: read 3 = written 2 + rejected 1" in result.output
    assert _rejects(tmp_path) == [("record_too_large", 2)]  # the file's max_record_mb stands, its max_depth not
    manifest = json.loads((tmp_path / "out.manifest.json").read_text("utf-8"))
    assert (manifest["run_spec"]["limits"]["max_depth"], manifest["run_spec"]["limits"]["max_record_bytes"]) == (6, 1 << 20)
    # the file alone; and the Python door's overrides merge the same way
    result = CliRunner().invoke(cli, ["convert", "--config", str(path)], catch_exceptions=False)
    assert "tally OK: read 3 = written 1 + rejected 2" in result.output
    assert _rejects(tmp_path) == [("too_deep", 1), ("record_too_large", 2)]
    result = api.run_config(path, overrides={"limits": {"max_record_mb": 3}})
    assert _rejects(tmp_path) == [("too_deep", 1)]


@pytest.mark.parametrize(
    "table, message",
    [
        ("max_depth = 0", "limits/max_depth: 0 is less than the minimum of 1"),
        ("max_depth = 300", "limits/max_depth: 300 is greater than the maximum of 255"),
        ('max_record_mb = "big"', "limits/max_record_mb: 'big' is not of type 'integer'"),
        ("max_record_mb = 1.5", "limits/max_record_mb: 1.5 is not of type 'integer'"),
        ("max_expansion = 0", "limits/max_expansion: 0 is less than the minimum of 1"),
        ("max_bytes = 3", "limits: Additional properties are not allowed ('max_bytes' was unexpected)"),
    ],
)
def test_a_bad_limit_in_the_file_is_one_line_naming_the_key(tmp_path, table, message):
    path = _limited_run(tmp_path, f"[limits]\n{table}\n")
    with pytest.raises(ConfigError) as exc:
        api.run_config(path)
    assert str(exc.value) == f"{path}: {message}"
    result = CliRunner().invoke(cli, ["convert", "--config", str(path)])
    assert result.exit_code != 0 and not (tmp_path / "out.parquet").exists()
    assert [line for line in result.output.splitlines() if line.strip()] == [f"kodolly: error: {path}: {message}"]


def test_key_values_of_a_repeatable_option():
    assert run_config.key_values(["a=1", "b= x ", "c=[1,2]", " d =true", "e=f=g"], "--option") == {
        "a": 1, "b": " x ", "c": [1, 2], "d": True, "e": "f=g"}
    for bad in ("novalue", "=1", " =1"):
        with pytest.raises(ConfigError, match=rf"^--set '{bad}': expected KEY=VALUE$"):
            run_config.key_values(["a=1", bad], "--set")


def test_a_bad_converter_option_on_the_command_line_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "x.json"), "--from", "alpaca", "-o", str(tmp_path / "o.parquet"), "-O", "oops"])
    assert result.exit_code != 0
    assert result.output.splitlines() == ["kodolly: error: --option 'oops': expected KEY=VALUE"]


def _deep_first_record(path):
    """A JSONL file whose first record nests 150 deep (over the default limit of 128)."""
    deep = {"instruction": "질문입니다", "output": "답입니다", "extra": json.loads("[" * 150 + "]" * 150)}
    path.write_text(json.dumps(deep, ensure_ascii=False) + "\n" + json.dumps({"instruction": "두 번째", "output": "답"}, ensure_ascii=False) + "\n")
    return path


def test_auto_detection_reads_under_the_files_limits(tmp_path):
    # detection reads the first record as the run will: under the config's [limits], not the defaults
    src = _deep_first_record(tmp_path / "deep.jsonl")
    inputs = [{"from": "auto", "path": str(src)}]
    (unknown,) = run_config.from_dict({"inputs": inputs}).inputs
    assert unknown.converter.name == "unknown"
    cfg = run_config.from_dict({"inputs": inputs, "limits": {"max_depth": 200}})
    assert [g.converter for g in cfg.inputs] == ["alpaca"]
    config = tmp_path / "run.toml"
    config.write_text(f'[[inputs]]\nfrom = "auto"\npath = "{src}"\n\n[output]\npath = "{tmp_path / "out.parquet"}"\n\n[limits]\nmax_depth = 200\n')
    result = CliRunner().invoke(cli, ["convert", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "out.parquet").column("instruction").to_pylist() == ["질문입니다", "두 번째"]


def test_api_auto_detection_reads_under_the_given_limits(tmp_path):
    from kodolly.io.limits import Limits

    src = _deep_first_record(tmp_path / "deep.jsonl")
    result = api.convert(str(src), "auto", str(tmp_path / "out.parquet"), limits=Limits(max_depth=200))
    assert (result.tally.written, result.tally.rejected) == (2, 0)
    result = api.convert(str(src), "auto", str(tmp_path / "default.parquet"))
    assert (result.tally.written, result.tally.rejected) == (0, 1)
