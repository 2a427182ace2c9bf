"""The run spec: one description of a run from every door, stored in the manifest and replayable;
one set of defaults for the CLI and the Python API."""

from __future__ import annotations

import json

from click.testing import CliRunner

import kodolly
from kodolly.cli import cli
from kodolly.corridor import RunSpec, make_spec
from support import FIXTURES

A = FIXTURES / "filters" / "dedup_variants.jsonl"


def test_api_and_cli_have_the_same_defaults(tmp_path):
    """kodolly.convert() with no filters argument runs the chain `kodolly convert` runs: content checks,
    exact dedup, the split -- same rows, same rejects, same filter settings."""
    api = kodolly.convert(A, "alpaca", tmp_path / "api" / "o.parquet")
    result = CliRunner().invoke(cli, ["convert", str(A), "--from", "alpaca", "-o", str(tmp_path / "cli" / "o.parquet")])
    assert result.exit_code == 0, result.output
    assert api.tally.as_dict()["by_reason"].get("duplicate_of", 0) > 0
    for name in ("o.parquet", "o.rejects.jsonl", "o.report.json"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    cli_manifest = json.loads((tmp_path / "cli" / "o.manifest.json").read_text())
    assert cli_manifest["filters"] == api.manifest_data["filters"]
    assert [f["name"] for f in api.manifest_data["filters"]] == ["content", "dedup", "split"]
    assert cli_manifest["run_spec"]["filters"] == api.manifest_data["run_spec"]["filters"] == {}
    # an explicit empty chain turns every filter off
    bare = kodolly.convert(A, "alpaca", filters=[])
    assert "duplicate_of" not in bare.tally.as_dict()["by_reason"]


def test_spec_round_trips_through_as_dict():
    spec = make_spec([A], "alpaca", "out.parquet", options={"license": "x"}, filters={"dedup": {"key": ["instruction"]}},
                     engine="inline", workers=2, batch_size=7)
    again = RunSpec.from_dict(json.loads(json.dumps(spec.as_dict())))
    assert again.as_dict() == spec.as_dict()
    assert again.groups[0].options == {"license": "x"} and again.engine == "inline" and again.batch_size == 7


def test_replay_runs_the_recorded_run_again(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        f'[[inputs]]\nfrom = "alpaca"\npath = "{A}"\n\n[[inputs]]\nfrom = "dolly"\npath = "{FIXTURES / "dolly" / "dolly_ko.jsonl"}"\n\n'
        f'[output]\npath = "{tmp_path / "first" / "o.parquet"}"\n\n[split]\ntrain = 0.5\ntest = 0.5\n\n[engine]\nname = "inline"\nbatch_size = 3\n',
        "utf-8",
    )
    result = CliRunner().invoke(cli, ["convert", "--config", str(config)])
    assert result.exit_code == 0, result.output
    manifest = tmp_path / "first" / "o.manifest.json"
    recorded = json.loads(manifest.read_text())
    assert recorded["run_spec"]["engine"] == "inline" and recorded["run_spec"]["batch_size"] == 3
    assert [g["converter"] for g in recorded["run_spec"]["groups"]] == ["alpaca", "dolly"]
    # the replay writes where the manifest says: move the first run's files away first
    (tmp_path / "first").rename(tmp_path / "kept")
    replayed = CliRunner().invoke(cli, ["convert", "--replay", str(tmp_path / "kept" / "o.manifest.json"), "--engine", "processes"])
    assert replayed.exit_code == 0, replayed.output
    for name in ("o.parquet", "o.rejects.jsonl", "o.report.json"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "kept" / name).read_bytes(), name
    again = json.loads((tmp_path / "first" / "o.manifest.json").read_text())
    assert again["engine"]["name"] == "processes" and again["inputs"] == recorded["inputs"]


def test_replay_refuses_a_run_made_with_python_filter_objects(tmp_path):
    from kodolly.filters import DedupFilter

    kodolly.convert(A, "alpaca", tmp_path / "o.parquet", filters=[DedupFilter()])
    result = CliRunner().invoke(cli, ["convert", "--replay", str(tmp_path / "o.manifest.json")])
    assert result.exit_code == 2
    assert "filter objects given in Python (dedup); it cannot be replayed" in result.output


def test_the_engine_is_chosen_by_cli_config_and_api(tmp_path):
    result = CliRunner().invoke(cli, ["convert", str(A), "--from", "alpaca", "-o", str(tmp_path / "o.parquet"), "--engine", "inline"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o.manifest.json").read_text())["engine"] == {"name": "inline", "workers": 1}
    bad = CliRunner().invoke(cli, ["convert", str(A), "--from", "alpaca", "-o", str(tmp_path / "x.parquet"), "--engine", "spark"])
    assert bad.exit_code == 2 and "spark" in bad.output


def test_a_missing_engine_module_is_one_line(monkeypatch, tmp_path):
    from kodolly.corridor import engines

    monkeypatch.setitem(engines.ENGINES, "ray", "kodolly.corridor.engines.no_such_module")
    try:
        kodolly.convert(A, "alpaca", tmp_path / "o.parquet", engine="ray")
    except kodolly.ConfigError as exc:
        assert str(exc) == "engine 'ray' is not part of this kodolly build"
    else:
        raise AssertionError("no error")
    monkeypatch.setitem(engines.ENGINES, "ray", "tests_fake_engine_needing_a_package")
    import sys
    import types

    fake = types.ModuleType("tests_fake_engine_needing_a_package")

    def create(workers=None, **options):
        import kodolly_not_installed_package  # noqa: F401

    fake.create = create
    monkeypatch.setitem(sys.modules, "tests_fake_engine_needing_a_package", fake)
    try:
        kodolly.convert(A, "alpaca", tmp_path / "o.parquet", engine="ray")
    except kodolly.MissingExtraError as exc:
        assert "pip install" in str(exc) and "[ray]'" in str(exc)  # the install line for the ray extra
    else:
        raise AssertionError("no error")
    assert list(tmp_path.iterdir()) == []
