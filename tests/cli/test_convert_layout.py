"""``kodolly convert --layout`` / ``--map`` and ``kodolly formats`` listing the shipped layouts (cli/convert.py)."""

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from kodolly.cli import cli
import pytest

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_convert_help_lists_layout_and_map():
    result = invoke("convert", "--help")
    assert result.exit_code == 0
    assert "--layout" in result.output and "--map" in result.output


def test_formats_lists_shipped_layouts_and_converters():
    result = invoke("formats")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines() if line and not line.startswith(" ")]
    assert {"aihub", "aihub-sft", "aihub-other", "hansol", "qa"} <= set(names)


def test_convert_with_a_layout_file(tmp_path):
    out = tmp_path / "legal.parquet"
    result = invoke("convert", ROOT / "fixtures/layouts/legal_qa_train.json", "--layout", ROOT / "examples/layouts/legal-qa.toml", "-o", out)
    assert result.exit_code == 0, result.output
    assert "tally OK: read 5 = written 2 + rejected 3" in result.output
    assert pq.read_table(out).column("id").to_pylist() == ["LAW-0001-Q1", "LAW-0002-Q1"]
    manifest = json.loads((tmp_path / "legal.manifest.json").read_text("utf-8"))
    assert manifest["converter"]["name"] == "legal-qa" and manifest["converter"]["license"] == "AI Hub terms"


def test_convert_with_field_mappings(tmp_path):
    data = tmp_path / "labelled.csv"
    data.write_text("question,answer,category,score\n서울의 인구는?,약 940만 명입니다.,사회,35\n한강은?,서해로 흐릅니다.,자연,x\n", "utf-8-sig")
    out = tmp_path / "out.parquet"
    result = invoke("convert", data, "--map", "instruction=question", "--map", "response=answer", "--map", "score=score", "--map", "domain=category", "-o", out)
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist()[0]["score"] == 35.0
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text("utf-8").splitlines()]
    assert [(r["reason"], r["line"]) for r in rejects] == [("bad_value:score", 3)]


def test_bad_layout_is_a_one_line_error_with_the_line(tmp_path):
    layout = tmp_path / "bad.toml"
    layout.write_text('[fields]\ninstruction = "question"\nrespons = "answer"\n', "utf-8")
    result = invoke("convert", ROOT / "fixtures/layouts/legal_qa_train.json", "--layout", layout, "-o", tmp_path / "x.parquet")
    assert result.exit_code == 2
    assert f"kodolly: error: {layout}:3: bad layout: fields.respons: unknown key" in result.output
    assert not (tmp_path / "x.parquet").exists()


def test_layout_and_from_together_is_an_error(tmp_path):
    result = invoke("convert", ROOT / "fixtures/layouts/legal_qa_train.json", "--from", "qa", "--map", "instruction=q", "-o", tmp_path / "x.parquet")
    assert result.exit_code == 2 and "not several" in result.output


def test_hansol_options_on_the_command_line(tmp_path):
    out = tmp_path / "h.jsonl"
    result = invoke("convert", ROOT / "fixtures/hansol/train_cp949.csv", "--from", "hansol", "-O", "answers=first", "-O", "join_pairs=2", "-o", out)
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"] for line in out.read_text("utf-8").splitlines()]
    assert len(ids) == 5 + 2 and sum(i.startswith("join:") for i in ids) == 2


def test_the_manifest_records_the_layout_file(tmp_path):
    """--layout: the manifest keeps the parsed layout, its path and the xxh3-128 of its bytes."""
    import tomllib

    import xxhash

    layout = tmp_path / "legal-qa.toml"
    layout.write_bytes((ROOT / "examples/layouts/legal-qa.toml").read_bytes())
    out = tmp_path / "legal.parquet"
    result = invoke("convert", ROOT / "fixtures/layouts/legal_qa_train.json", "--layout", layout, "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "legal.manifest.json").read_text("utf-8"))
    recorded = manifest["converter"]["layout"]
    assert recorded == {
        "source": str(layout),
        "path": str(layout),
        "xxh3_128": xxhash.xxh3_128_hexdigest(layout.read_bytes()),
        "definition": tomllib.loads(layout.read_text("utf-8")),
    }
    assert recorded["definition"]["fields"]["response"] == {"path": "a.text", "missing": "no_answer"}
    assert manifest["groups"][0]["layout"] == recorded
    # an edited layout is a different layout: the hash changes with it
    layout.write_text(layout.read_text("utf-8").replace('missing = "no_answer"', 'missing = "unanswered"'), "utf-8")
    assert invoke("convert", ROOT / "fixtures/layouts/legal_qa_train.json", "--layout", layout, "-o", out).exit_code == 0
    edited = json.loads((tmp_path / "legal.manifest.json").read_text("utf-8"))["converter"]["layout"]
    assert edited["xxh3_128"] != recorded["xxh3_128"]
    assert edited["definition"]["fields"]["response"]["missing"] == "unanswered"


def test_the_manifest_records_a_map(tmp_path):
    """--map: the in-memory layout is recorded (no file, so no path and no hash)."""
    out = tmp_path / "qa.parquet"
    result = invoke("convert", ROOT / "fixtures/filters/user_scored.csv", "--map", "instruction=question", "--map", "response=answer",
                    "--map", "score=score", "--map", "meta.subject=category", "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "qa.manifest.json").read_text("utf-8"))
    assert manifest["converter"]["name"] == "mapped"
    assert manifest["converter"]["layout"] == {
        "source": "--map", "path": None, "xxh3_128": None,
        "definition": {"name": "mapped", "records": "[]", "description": "fields mapped on the command line",
                       "fields": {"instruction": "question", "response": "answer", "score": "score"},
                       "meta": {"subject": "category"}},
    }


def test_a_python_converter_records_no_layout(tmp_path):
    out = tmp_path / "d.parquet"
    result = invoke("convert", ROOT / "fixtures/dolly/dolly_ko.jsonl", "--from", "dolly", "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "d.manifest.json").read_text("utf-8"))
    assert "layout" not in manifest["converter"] and "layout" not in manifest["groups"][0]
    # manifests written before the layout record (no "layout" key) still pass the schema
    from kodolly.manifest import validate_manifest

    validate_manifest(json.loads((ROOT / "fixtures/hub/mixed_rows.manifest.json").read_text("utf-8")))
