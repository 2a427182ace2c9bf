"""The ordering contract: rows and rejects come out in position order, so the parquet file, the rejects
file and the report are byte-identical whatever the batch size, the worker count and the engine.

Asserted on every conversion fixture under fixtures/ (each folder is one run over all its files; the
filters folder is one mixed-converter run with every filter on), on a mixed-converter run with a
``finish`` converter (hansol ``join_pairs``), and on a generated file cut into many shards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import kodolly
from kodolly.layouts import load_layout
from support import FIXTURES, output_files, write_mixed_jsonl

ROOT = FIXTURES.parent
F = FIXTURES
EVERY_FILTER = {
    "score": {"min": 30, "keep_unscored": True},
    "domain": {"exclude": ["예체능", "종교", "보건"]},
    "content": {"min_chars": {"response": 2}},
    "dedup": {},
    "near_dup": {"threshold": 0.7},
    "split": {"train": 0.8, "validation": 0.1, "test": 0.1},
}


def _runs() -> dict[str, tuple[list[kodolly.InputGroup], dict]]:
    G = kodolly.InputGroup
    bad = sorted(p for p in (F / "bad").iterdir() if p.name != "lfs_pointer.json")  # the pointer stops a run: below
    return {
        "aihub": ([G([F / "aihub"], "aihub")], {}),
        "alpaca": ([G([F / "alpaca"], "alpaca")], {}),
        "archives": ([G([F / "archives"], "alpaca")], {}),
        "bad": ([G(bad, "alpaca")], {}),
        "dolly": ([G([F / "dolly"], "dolly"), G([F / "train" / "dolly_ko.jsonl"], "dolly")], {}),
        "encodings": ([G([F / "encodings"], "alpaca")], {}),
        "filters": (
            [
                G([F / "filters" / "aihub_sft_sample.json"], "aihub"),
                G([F / "filters" / "all_reasons.jsonl"], "test_scored"),
                G([F / "filters" / "dedup_second_source.jsonl"], "dolly"),
                G([F / "filters" / "dedup_variants.jsonl", F / "filters" / "near_dup_pairs.jsonl"], "alpaca"),
                G([F / "filters" / "user_scored.csv"], "qa"),
            ],
            EVERY_FILTER,
        ),
        "hansol": ([G([F / "hansol"], "hansol", {"join_pairs": 3})], {}),
        "hub": ([G([F / "hub" / "ko_alpaca.json"], "alpaca")], {}),
        "korquad1": ([G([F / "korquad1"], "korquad1")], {}),
        "korquad2": ([G([F / "korquad2"], "korquad2")], {}),
        "layouts": ([G([F / "layouts" / "legal_qa_train.json"], load_layout(ROOT / "examples" / "layouts" / "legal-qa.toml"))], {}),
        "sharegpt": ([G([F / "sharegpt"], "sharegpt")], {}),
        # several converters in one run, one of them combining records at the end (hansol join_pairs: combine)
        "mixed_finish": (
            [
                G([F / "alpaca" / "KoAlpaca_v1.1.jsonl"], "alpaca"),
                G([F / "hansol" / "train_utf8.csv", F / "hansol" / "test_utf8.csv"], "hansol", {"join_pairs": 2}),
                G([F / "korquad1" / "KorQuAD_v1.0_dev_sample.json"], "korquad1"),
                G([F / "alpaca" / "kullm-v2.jsonl", F / "bad" / "bad_line.jsonl"], "alpaca"),
            ],
            {"dedup": {}, "split": {"train": 0.5, "test": 0.5}},
        ),
    }


# (engine, workers, batch size): every value of each dimension against the inline, uncut baseline
VARIANTS = [("inline", 1, 1), ("inline", 1, 500), ("processes", 1, 4096), ("processes", 2, 1), ("processes", 2, 500)]


def _outputs(tmp: Path, name: str, groups, filters, engine: str | None, workers: int, batch: int | None):
    out = tmp / f"{name}-{engine}-{workers}-{batch}" / "out.parquet"
    out.parent.mkdir()
    result = kodolly.convert([], groups=groups, output=out, filters=filters, engine=engine, workers=workers, batch_size=batch)
    files = output_files(out)
    return files, result


@pytest.mark.parametrize("name", sorted(_runs()))
def test_every_fixture_gives_the_same_bytes_on_every_engine_worker_count_and_batch_size(name, tmp_path, scored_converter):
    groups, filters = _runs()[name]
    files, base = _outputs(tmp_path, name, groups, filters, "inline", 1, None)
    assert set(files) == {"out.parquet", "out.rejects.jsonl", "out.report.json"}
    assert base.tally.balanced and base.tally.read > 0
    for engine, workers, batch in VARIANTS:
        other, result = _outputs(tmp_path, name, groups, filters, engine, workers, batch)
        assert other == files, (engine, workers, batch)
        assert result.manifest_data["engine"] == {"name": engine, "workers": workers}
        assert result.manifest_data["inputs"] == base.manifest_data["inputs"]  # same bytes read and hashed
        if batch == 1 and name in ("alpaca", "bad"):
            assert len(result.manifest_data["shards"]) > len(base.manifest_data["shards"])  # really cut finer


def test_a_combining_group_is_cut_and_combined_in_one_last_shard_and_the_others_are_cut(tmp_path):
    groups, filters = _runs()["mixed_finish"]
    _files, result = _outputs(tmp_path, "plan", groups, filters, "processes", 2, 1)
    shards = result.manifest_data["shards"]
    kinds = [(s["group"], s["kind"]) for s in shards]
    hansol = [k for g, k in kinds if g == 1]
    assert hansol == ["csv"] * (len(hansol) - 1) + ["combine"] and len(hansol) > 4  # CSV ranges of one record, then the pairs
    assert kinds.count((0, "range")) == len((F / "alpaca" / "KoAlpaca_v1.1.jsonl").read_bytes().splitlines())  # one line per shard
    assert (2, "items") in kinds  # a JSON envelope: item ranges (io.json_items)
    assert [s["seq"] for s in shards] == list(range(len(shards)))
    rows = kodolly.read_rows(tmp_path / "plan-processes-2-1" / "out.parquet").to_pylist()
    sources = [r["source"] for r in rows]
    first_korquad = sources.index("korquad1")
    assert "hansol" in sources[:first_korquad] and "alpaca" in sources[first_korquad:]  # groups in order, alpaca again last


def test_a_generated_file_cut_into_many_shards_agrees(tmp_path):
    src = tmp_path / "mixed.jsonl"
    write_mixed_jsonl(src, 3000)
    groups = [kodolly.InputGroup([src], "alpaca")]
    files, base = _outputs(tmp_path, "gen", groups, {}, "inline", 1, None)
    assert base.tally.as_dict()["by_reason"]["duplicate_of"] > 50
    for engine, workers, batch in [("inline", 1, 7), ("processes", 2, 7), ("processes", 2, 333)]:
        assert _outputs(tmp_path, "gen", groups, {}, engine, workers, batch)[0] == files


@pytest.mark.parametrize("engine", ["inline", "processes"])
def test_an_lfs_pointer_stops_the_run_with_one_line_on_every_engine(engine, tmp_path):
    with pytest.raises(kodolly.LfsPointerError, match="lfs_pointer.json: this is a Git-LFS pointer"):
        kodolly.convert([F / "alpaca" / "kullm-v2.jsonl", F / "bad" / "lfs_pointer.json"], "alpaca", tmp_path / "o.parquet", engine=engine)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["alpaca", "filters", "hansol", "korquad1", "sharegpt"])
def test_a_whole_file_shard_mapped_in_small_pieces_gives_the_same_bytes(name, tmp_path, monkeypatch, scored_converter):
    """convert_records turns row dicts into Arrow PIECE_ROWS at a time: the piece size changes nothing."""
    from kodolly.corridor import convert

    groups, filters = _runs()[name]
    files, _ = _outputs(tmp_path, name, groups, filters, "inline", 1, None)
    monkeypatch.setattr(convert, "PIECE_ROWS", 2)
    assert _outputs(tmp_path, name + "-pieces", groups, filters, "inline", 1, None)[0] == files


@pytest.mark.parametrize("name", ["alpaca", "hub", "korquad1", "korquad2", "layouts", "mixed_finish", "bad"])
def test_json_arrays_and_envelopes_cut_into_item_ranges_give_the_same_bytes(name, tmp_path):
    """A plain UTF-8 JSON array or envelope is planned as item ranges (io.json_items); tiny ranges
    (one item each) on every engine give what one whole-file shard gives."""
    from kodolly.corridor import execute, make_spec

    groups, filters = _runs()[name]
    files, base = _outputs(tmp_path, name, groups, filters, "inline", 1, None)
    for engine in ("inline", "processes"):
        out = tmp_path / f"{name}-items-{engine}" / "out.parquet"
        out.parent.mkdir()
        spec = make_spec([], None, out, groups=groups, filters=filters, engine=engine, engine_options={"shard_bytes": 64})
        result = execute(spec)
        assert output_files(out) == files
        kinds = [s["kind"] for s in result.manifest_data["shards"]]
        base_kinds = [s["kind"] for s in base.manifest_data["shards"]]
        if name != "bad":  # bad/: no plain UTF-8 array with more than one item
            assert kinds.count("items") > base_kinds.count("items") and len(kinds) > len(base_kinds)  # really cut
        assert result.manifest_data["inputs"] == base.manifest_data["inputs"]
