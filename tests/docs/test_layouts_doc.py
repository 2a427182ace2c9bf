"""The README's layouts section: the documented example layout is the shipped example file, and it works as shown."""

import json
import re
import tomllib
from pathlib import Path

import pytest

import kodolly
from kodolly.layouts import load_layout, parse_layout_text
from support import readme_section

ROOT = Path(__file__).resolve().parents[2]
DOC = readme_section("Describing a new source")


def blocks(lang):
    return re.findall(r"```" + lang + r"\n(.*?)```", DOC, flags=re.S)


def test_the_documented_layout_is_the_example_file():
    example = (ROOT / "examples" / "layouts" / "legal-qa.toml").read_text("utf-8")
    assert example in blocks("toml")


def test_every_toml_block_in_the_doc_parses():
    for text in blocks("toml"):
        data = tomllib.loads(text)
        if "fields" in data:
            parse_layout_text(text, source="doc")


def test_the_documented_run_gives_the_documented_tally_and_first_row(tmp_path):
    result = kodolly.convert(ROOT / "fixtures/layouts/legal_qa_train.json", load_layout(ROOT / "examples/layouts/legal-qa.toml"), tmp_path / "legal.parquet")
    assert "tally OK: read 5 = written 2 + rejected 3" in DOC
    assert result.tally.format().splitlines()[-1] == "tally OK: read 5 = written 2 + rejected 3"
    shown = json.loads(blocks("json")[1].replace("...", ""))
    row = kodolly.read_rows(tmp_path / "legal.parquet").to_pylist()[0]
    for key in ("instruction", "response", "category", "source", "id", "domain", "score", "license"):
        assert row[key] == shown[key]


def test_the_documented_error_line():
    text = '[fields]\ninstruction = "question"\n\n\nrespnse = "answer"\n'
    with pytest.raises(kodolly.ConfigError) as caught:
        parse_layout_text(text, source="my.toml")
    assert f"kodolly: error: {caught.value}" in DOC
