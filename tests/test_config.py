import json

import pytest

from kodolly import api
from kodolly import config as run_config
from kodolly.errors import ConfigError


def _copy_fixture_dir(fixtures, tmp_path):
    for name in ("reference_run.toml", "aihub_sft_sample.json", "user_scored.csv"):
        (tmp_path / name).write_bytes((fixtures / "filters" / name).read_bytes())
    return tmp_path / "reference_run.toml"


def test_config_file_runs_the_reference_workflow(fixtures, tmp_path, test_converters):
    path = _copy_fixture_dir(fixtures, tmp_path)
    result = api.run_config(path)
    assert result.output == tmp_path / "out" / "ko-dolly.parquet"  # relative to the config file
    assert (result.tally.read, result.tally.written, result.tally.rejected) == (22, 10, 12)
    assert dict(result.tally.by_reason) == {
        "content_response_equals_instruction": 1, "domain_excluded": 5, "duplicate_of": 3,
        "missing_field:answer.contents": 1, "score_below": 2,
    }
    manifest = json.loads(result.manifest.read_text("utf-8"))
    assert {f["name"]: f["settings"] for f in manifest["filters"]}["score"]["keep_unscored"] is True
    assert result.report == tmp_path / "out" / "ko-dolly.report.json" and result.report.exists()


def test_overrides_replace_settings_of_the_file(fixtures, tmp_path, test_converters):
    path = _copy_fixture_dir(fixtures, tmp_path)
    result = api.run_config(path, overrides={"filters": {"score": {"keep_unscored": False}}, "dedup": {"enabled": False},
                                             "split": {"train": 1.0}})
    by_reason = dict(result.tally.by_reason)
    # 10 AI Hub rows (none has a score) and one CSV row without a score
    assert by_reason["no_score"] == 11 and "duplicate_of" not in by_reason
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


def test_an_input_may_name_a_converter_object(fixtures, test_converters):
    cfg = run_config.from_dict({"inputs": [{"from": test_converters["csv"], "path": str(fixtures / "filters" / "user_scored.csv")}]})
    assert cfg.inputs[0].converter is test_converters["csv"]


def test_the_schema_is_valid_and_the_fixture_config_passes_it(fixtures):
    import tomllib

    import jsonschema

    from kodolly.manifest import load_schema

    jsonschema.Draft202012Validator.check_schema(load_schema("run-config"))
    run_config.validate(tomllib.loads((fixtures / "filters" / "reference_run.toml").read_text("utf-8")))


def test_the_readme_example_config_is_valid(fixtures):
    import re
    import tomllib

    text = (fixtures.parent / "docs" / "readme" / "filters.md").read_text("utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    data = tomllib.loads(block)
    run_config.validate(data)
    from kodolly.filters import build_filters

    assert [f.name for f in build_filters(run_config.from_dict(
        dict(data, inputs=[{"from": "alpaca", "path": "x.json"}])).filters)] == [
        "score", "domain", "content", "dedup", "near_dup", "split"]
