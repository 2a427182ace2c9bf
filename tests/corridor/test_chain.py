"""The real filter chain with every filter on gives byte-identical output inline and with 1, 2 and 3 workers."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import kodolly
from kodolly.corridor import FilterChain, jsonl
from kodolly.filters import build_filters
from kodolly.layouts import mapped_converter
from support import output_files, write_mixed_jsonl

EVERY_FILTER = {
    "score": {"min": 30, "keep_unscored": True},
    "category": {"exclude": ["brainstorming"]},
    "domain": {"exclude": ["예체능", "종교", "보건"]},
    "content": {"min_chars": {"response": 120, "total": 300}, "max_chars": {"total": 1800}, "min_hangul": {"response": 0.3}},
    "dedup": {},
    "split": {"train": 0.8, "validation": 0.1, "test": 0.1},
}
DOMAINS = ["", "예체능", "종교", "보건 ", "역사", "과학"]
CATEGORIES = ["open_qa", "closed_qa", "brainstorming", "general_qa"]
SCORES = [None, 10, 30, 31, 45.5, "45", 80]


def _labels(n: int, rec: dict) -> dict:
    """Score, domain and category for the mapped source; copies of a record keep its labels (a
    duplicate's labels do not decide whether it is a duplicate, only its texts do)."""
    h = len(rec["instruction"]) + len(rec["output"])
    extra = {"domain": DOMAINS[h % len(DOMAINS)], "category": CATEGORIES[h % len(CATEGORIES)]}
    score = SCORES[h % len(SCORES)]
    if score is not None:
        extra["score"] = score
    return extra


MAPPED = {"instruction": "instruction", "context": "input", "response": "output",
          "score": "score", "domain": "domain", "category": "category"}


@pytest.mark.parametrize("source", ["alpaca", "mapped"])
def test_every_filter_on_one_two_and_three_workers_agree(source, tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 150_000)  # ~20 chunks: every worker busy
    src = tmp_path / "in.jsonl"
    if source == "alpaca":  # the columnar fast path: apply_table / prepare_table in the workers
        converter = "alpaca"
        write_mixed_jsonl(src, 3000)
    else:  # a layout converter, record by record: apply / prepare in the workers
        converter = mapped_converter(MAPPED)
        write_mixed_jsonl(src, 3000, extra=_labels)
    chain = FilterChain(build_filters(EVERY_FILTER))
    assert [f.name for f in chain.filters[: chain.n_map]] == ["score", "category", "domain", "content"]
    assert chain.keyed == {4} and chain.columnar_ok

    outs = []
    for engine, workers in (("inline", 1), ("processes", 2), ("processes", 3)):
        out = tmp_path / f"w{workers}" / "out.parquet"
        out.parent.mkdir()
        result = kodolly.convert(src, converter, out, filters=EVERY_FILTER, engine=engine, workers=workers)
        files = output_files(out)
        outs.append((files, result.tally.as_dict(), result.manifest_data["inputs"]))
    assert set(outs[0][0]) == {"out.parquet", "out.rejects.jsonl", "out.report.json"}
    assert outs[0] == outs[1] == outs[2]

    tally = outs[0][1]
    assert tally["balanced"] and tally["read"] == 2999  # 3000 lines, one blank
    reasons = tally["by_reason"]
    expected = {"bad_json", "bad_encoding", "empty_field:instruction", "duplicate_of",
                "content_too_short:response", "content_too_short:total", "content_too_long:total"}
    if source == "mapped":
        expected |= {"score_below", "category_excluded", "domain_excluded"}
    assert expected <= set(reasons), reasons
    assert reasons["duplicate_of"] > 20
    table = pq.read_table(tmp_path / "w3" / "out.parquet")
    assert table.num_rows == tally["written"] > 500
    assert set(table.column("split").to_pylist()) == {"train", "validation", "test"}
    if source == "mapped":
        assert not {"예체능", "종교", "보건"} & set(table.column("domain").to_pylist())  # "보건 " normalised, dropped
        scores = table.column("score").to_pylist()
        assert None in scores and all(s is None or s > 30 for s in scores)  # unscored rows kept
