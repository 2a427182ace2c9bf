"""Per-file detection (detection.py): a folder of mixed sources is read in one run, each file (and zip
member) with the converter that fits it; a file nothing fits is one ``unknown_format`` reject."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
from click.testing import CliRunner

import kodolly
from columnar_support import write_columnar
from kodolly.cli import cli
from kodolly.detection import UNKNOWN_FORMAT, detect_groups
from kodolly.errors import ConfigError
from kodolly.io.readers import read_records
from kodolly.io.sources import expand_inputs
from support import FIXTURES


@pytest.fixture()
def mixed(tmp_path):
    folder = tmp_path / "mix"
    folder.mkdir()
    shutil.copy(FIXTURES / "alpaca/ko_alpaca_data.json", folder / "a_koalpaca.json")
    shutil.copy(FIXTURES / "korquad1/KorQuAD_v1.0_dev_sample.json", folder / "b_korquad.json")
    shutil.copy(FIXTURES / "sharegpt/ko_dataset.jsonl", folder / "c_sharegpt.jsonl")
    dolly = [r for r, _ in read_records(expand_inputs([FIXTURES / "dolly/dolly_ko.jsonl"])[0])]
    write_columnar(dolly, folder / "d_dolly", "parquet", rows_per_group=2)
    return folder


ALONE = {  # each file converted alone with its converter: (fixture, converter)
    "alpaca": ("alpaca/ko_alpaca_data.json", "alpaca"),
    "korquad1": ("korquad1/KorQuAD_v1.0_dev_sample.json", "korquad1"),
    "sharegpt": ("sharegpt/ko_dataset.jsonl", "sharegpt"),
    "dolly": ("dolly/dolly_ko.jsonl", "dolly"),
}


def test_each_file_of_a_mixed_folder_gets_its_converter(mixed):
    groups = detect_groups([mixed])
    assert [(g.converter, [i.name.rsplit("/", 1)[-1] for i in g.sources]) for g in groups] == [
        ("alpaca", ["a_koalpaca.json"]),
        ("korquad1", ["b_korquad.json"]),
        ("sharegpt", ["c_sharegpt.jsonl"]),
        ("dolly", ["d_dolly.parquet"]),
    ]


def test_a_mixed_folder_converts_in_one_run_and_the_tally_adds_up_per_source(mixed, tmp_path):
    out = tmp_path / "out.parquet"
    res = CliRunner().invoke(cli, ["convert", str(mixed), "-o", str(out), "--no-dedup"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "out.manifest.json").read_text("utf-8"))
    counts = manifest["counts"]["sources"]
    assert {name: (c["read"], c["written"], c["by_reason"]) for name, c in counts.items()} == {
        "alpaca": (3, 3, {}),
        "korquad1": (6, 4, {"answer_not_in_context": 1, "no_questions": 1}),
        "sharegpt": (3, 2, {"bad_json": 1}),
        "dolly": (4, 3, {"bad_value:category": 1}),
    }
    for source, (fixture, converter) in ALONE.items():  # the same as each file converted alone
        alone = kodolly.convert(FIXTURES / fixture, converter, filters=kodolly.filters.build_filters({"dedup": {"enabled": False}}))
        assert alone.tally.as_dict()["sources"][converter] == counts[source], source
    assert manifest["counts"]["balanced"] and manifest["counts"]["read"] == 16
    # the report says which converter read which file
    for converter, name in (("alpaca", "a_koalpaca.json"), ("korquad1", "b_korquad.json"), ("sharegpt", "c_sharegpt.jsonl"), ("dolly", "d_dolly.parquet")):
        assert any(line.startswith(converter) and line.endswith(str(mixed / name)) for line in res.output.splitlines()), (converter, res.output)
        assert f"converter: {converter} for {mixed / name}" in res.output
    report = json.loads((tmp_path / "out.report.json").read_text("utf-8"))
    assert [(e["file"].rsplit("/", 1)[-1], e["converter"]) for e in report["inputs"]] == [
        ("a_koalpaca.json", "alpaca"), ("b_korquad.json", "korquad1"), ("c_sharegpt.jsonl", "sharegpt"), ("d_dolly.parquet", "dolly")]
    assert report["warnings"] == []
    assert "missing_field:paragraphs" not in res.output


def test_zip_members_are_detected_one_by_one(mixed, tmp_path):
    archive = tmp_path / "mix.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(mixed.iterdir()):
            zf.write(path, f"inner/{path.name}")
    groups = detect_groups([archive])
    assert [(g.converter, [i.name for i in g.sources]) for g in groups] == [
        ("alpaca", [f"{archive}!inner/a_koalpaca.json"]),
        ("korquad1", [f"{archive}!inner/b_korquad.json"]),
        ("sharegpt", [f"{archive}!inner/c_sharegpt.jsonl"]),
        ("dolly", [f"{archive}!inner/d_dolly.parquet"]),
    ]


def test_a_file_no_converter_fits_is_one_reject_with_its_path(mixed, tmp_path):
    stray = mixed / "e_unknown.jsonl"
    stray.write_text("\n".join(json.dumps({"foo": i, "bar": "x"}) for i in range(500)) + "\n", "utf-8")
    result = kodolly.api.run_config({"inputs": [{"from": "auto", "path": str(mixed)}], "output": {"path": str(tmp_path / "o.parquet")}})
    assert result.tally.source("unknown").read == 1
    assert dict(result.tally.source("unknown").rejected) == {UNKNOWN_FORMAT: 1}
    lines = [json.loads(line) for line in result.rejects.read_text("utf-8").splitlines()]
    unknown = [r for r in lines if r["reason"] == UNKNOWN_FORMAT]
    assert [(r["file"], r["index"]) for r in unknown] == [(str(stray), 0)]
    assert result.report_data["warnings"] == [f"{stray}: all 1 items were rejected, none written (read with unknown)"]
    with pytest.raises(ConfigError, match=r"e_unknown\.jsonl: no converter recognises this file"):
        detect_groups([mixed], strict=True)


def test_an_input_whose_every_record_is_rejected_is_warned_about(tmp_path):
    # KoAlpaca rows read with the KorQuAD converter: every one rejected
    res = CliRunner().invoke(cli, ["convert", str(FIXTURES / "alpaca/ko_alpaca_data.json"), "--from", "korquad1", "-o", str(tmp_path / "k.parquet")])
    assert res.exit_code == 0, res.output
    assert f"warning: {FIXTURES / 'alpaca/ko_alpaca_data.json'}: all 3 items were rejected, none written (read with korquad1)" in res.output


def test_the_python_api_detects_per_file_with_auto(mixed):
    result = kodolly.convert(mixed, "auto")
    assert {name: counts.written for name, counts in result.tally.sources.items()} == {"alpaca": 3, "korquad1": 4, "sharegpt": 2, "dolly": 3}


def test_a_detected_run_is_replayed_from_its_manifest(mixed, tmp_path):
    """The manifest's run_spec names the detected inputs (zip members as ARCHIVE!MEMBER, the unknown
    group's files); --replay reads the same inputs with the same converters: the same bytes."""
    archive = tmp_path / "mix.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(mixed.iterdir()):
            zf.write(path, f"inner/{path.name}")
        zf.writestr("inner/e_unknown.jsonl", json.dumps({"foo": 1}) + "\n")
    first = tmp_path / "first"
    res = CliRunner().invoke(cli, ["convert", str(archive), "-o", str(first / "o.parquet"), "--engine", "processes"])
    assert res.exit_code == 0, res.output
    spec = json.loads((first / "o.manifest.json").read_text("utf-8"))["run_spec"]
    assert [(g["converter"], g["sources"]) for g in spec["groups"]] == [
        ("alpaca", [f"{archive}!inner/a_koalpaca.json"]),
        ("korquad1", [f"{archive}!inner/b_korquad.json"]),
        ("sharegpt", [f"{archive}!inner/c_sharegpt.jsonl"]),
        ("dolly", [f"{archive}!inner/d_dolly.parquet"]),
        ("unknown", [f"{archive}!inner/e_unknown.jsonl"]),
    ]
    first.rename(tmp_path / "kept")
    again = CliRunner().invoke(cli, ["convert", "--replay", str(tmp_path / "kept" / "o.manifest.json"), "--engine", "inline"])
    assert again.exit_code == 0, again.output
    for name in ("o.parquet", "o.rejects.jsonl", "o.report.json"):
        assert (first / name).read_bytes() == (tmp_path / "kept" / name).read_bytes(), name
