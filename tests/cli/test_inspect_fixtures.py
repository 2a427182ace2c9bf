"""`kodolly inspect` / `convert --from auto` name the right converter for every data fixture.

Every data file under fixtures/ must be listed here (a new fixture without an entry fails
``test_every_data_fixture_is_listed``), except the deliberately broken files of fixtures/bad/, the
plugin package, READMEs, generator scripts, TOML configs and manifests.
"""

from __future__ import annotations

import json

from pathlib import Path

import pytest
from click.testing import CliRunner
from support import FIXTURES

from kodolly.cli import cli

# fixture (relative to fixtures/) -> the converter inspect must name (None: no built-in converter fits)
EXPECTED: dict[str, str | None] = {
    "aihub/Other/Other.zip": "aihub",
    "aihub/Training/01.원천데이터/TS_01.한국어말뭉치데이터_문어체_WL01.zip": "aihub",  # corpus: aihub rejects it not_qa
    "aihub/Training/01.원천데이터/TS_02.RLHF데이터.zip": "aihub",  # PPO questions: aihub rejects them no_answer
    "aihub/Training/02.라벨링데이터/TL_02.RLHF데이터.zip.part0": "aihub",
    "aihub/Training/02.라벨링데이터/TL_02.RLHF데이터.zip.part1": "aihub",
    "aihub/Validation/02.라벨링데이터/VL.zip": "aihub",
    "alpaca/KoAlpaca_v1.1.jsonl": "alpaca",
    "alpaca/ko_alpaca_data.json": "alpaca",
    "alpaca/kullm-v2.jsonl": "alpaca",
    "alpaca/kullm_eval.json": "alpaca",
    "alpaca/preference_lookalike.json": "alpaca",
    "alpaca/spoken_style.jsonl": "alpaca",
    "archives/cp949_names.zip": "alpaca",
    "archives/kullm.jsonl.gz": "alpaca",
    "dolly/dolly_ko.jsonl": "dolly",
    "dpo/pairs.jsonl": "dolly",  # kodolly rows (Dolly fields + provenance) read back
    "dpo/rows.jsonl": "dolly",
    "encodings/cp949.csv": "alpaca",
    "encodings/cp949_array.json": "alpaca",
    "encodings/invisible.jsonl": "alpaca",
    "encodings/nfd.jsonl": "alpaca",
    "encodings/utf16.jsonl": "alpaca",
    "encodings/utf16_array.json": "alpaca",
    "encodings/utf8_bom.csv": "alpaca",
    "filters/aihub_sft_sample.json": "aihub",
    "filters/all_reasons.jsonl": None,  # {q, a}: read by the tests' own test_scored converter
    "filters/dedup_second_source.jsonl": "dolly",
    "filters/dedup_variants.jsonl": "alpaca",
    "filters/near_dup_pairs.jsonl": "alpaca",
    "filters/near_dup_second_source.jsonl": "dolly",
    "filters/user_scored.csv": "qa",
    "hansol/test_utf8.csv": "hansol",  # test.csv (id, 질문): hansol rejects it no_answer
    "hansol/train_cp949.csv": "hansol",
    "hansol/train_utf8.csv": "hansol",
    "hansol/train_utf8_bom.csv": "hansol",
    "hansol_zip/open.zip": "hansol",  # the competition download: open/train.csv inside
    "hub/dpo_conversational.jsonl": None,  # trl conversational DPO output (lists of messages), not an input format
    "hub/dpo_pairs.jsonl": "dolly",
    "hub/ko_alpaca.json": "alpaca",
    "hub/mixed_rows.jsonl": "dolly",
    "korquad1/KorQuAD_v1.0_dev_sample.json": "korquad1",
    "korquad1/malformed.json": "korquad1",
    "korquad2/KorQuAD_2.1_dev_sample.json": "korquad2",
    "korquad2/KorQuAD_2.1_test_no_version.json": "korquad2",
    "korquad2/br_in_table_cell.json": "korquad2",
    "layouts/legal_qa_train.json": None,  # needs a layout file (examples/layouts/legal-qa.toml)
    "pii/chat.jsonl": "alpaca",
    "report_html/mixed.jsonl": None,  # {q, ctx, a, c, d}: read with --map by the HTML report tests
    "sharegpt/ko_dataset.json": "sharegpt",
    "sharegpt/ko_dataset.jsonl": "sharegpt",
    "sharegpt/long_conversation.jsonl": "sharegpt",
    "sharegpt/openai_messages.jsonl": "sharegpt",
    "sharegpt/kovicuna_system.json": "sharegpt",
    "train/dolly_ko.jsonl": "dolly",
    "train/dpo_ko.jsonl": "dolly",
}


def _data_fixtures() -> list[str]:
    out = []
    for path in sorted(FIXTURES.rglob("*")):
        rel = path.relative_to(FIXTURES)
        if not path.is_file() or rel.parts[0] in ("bad", "plugin_pkg"):
            continue
        if path.suffix in (".md", ".py", ".toml") or path.name.endswith(".manifest.json"):
            continue
        out.append(rel.as_posix())
    return out


def test_every_data_fixture_is_listed():
    assert _data_fixtures() == sorted(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_inspect_names_the_right_converter(fixture):
    expected = EXPECTED[fixture]
    res = CliRunner().invoke(cli, ["inspect", str(FIXTURES / fixture)])
    if expected is None:
        assert res.exit_code == 2, res.output
        assert "no converter recognises this file" in res.output
    else:
        assert res.exit_code == 0, res.output
        first = res.output.splitlines()[0]
        shown, converter = first.rsplit(": ", 1)  # a file, an archive member, or a split zip's joined name
        assert shown.startswith(str(FIXTURES / fixture).split(".zip")[0]) and converter == expected, first


def test_convert_auto_uses_the_detected_converter(tmp_path):
    res = CliRunner().invoke(cli, ["convert", str(FIXTURES / "hansol" / "test_utf8.csv"), "-o", str(tmp_path / "t.parquet")])
    assert res.exit_code == 0, res.output
    assert "converter: hansol" in res.output and "tally OK: read 1 = written 0 + rejected 1" in res.output
    unknown = FIXTURES / "hub" / "dpo_conversational.jsonl"
    res = CliRunner().invoke(cli, ["convert", str(unknown), "-o", str(tmp_path / "d.parquet")])
    # a file no converter fits: one unknown_format reject naming it, however many records it has
    assert res.exit_code == 0, res.output
    assert f"converter: none fits (unknown_format) for {unknown}" in res.output
    assert "tally OK: read 1 = written 0 + rejected 1" in res.output
    assert f"warning: {unknown}: all 1 items were rejected, none written (read with unknown)" in res.output
    rejects = [json.loads(line) for line in (tmp_path / "d.rejects.jsonl").read_text("utf-8").splitlines()]
    assert [(r["reason"], r["file"]) for r in rejects] == [("unknown_format", str(unknown))]
    res = CliRunner().invoke(cli, ["convert", str(unknown), "--strict", "-o", str(tmp_path / "s.parquet")])
    assert res.exit_code == 2
    assert f"{unknown}: no converter recognises this file; name one with --from" in res.output
