import pytest

from kodolly import api
from kodolly.errors import ConfigError
from kodolly.filters.near_dup import NearDupFilter, shingles

from kodolly.rows import make_row

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine


def row(id="r", instruction="질문입니다", response="답입니다", **fields):
    """A row as the pipeline hands it to filters (already normalised)."""
    return make_row(instruction=instruction, response=response, source="test", id=id, **fields)


def _run(fixtures, threshold):
    return api.convert(fixtures / "filters" / "near_dup_pairs.jsonl", "alpaca", filters=[NearDupFilter(threshold)], output=None)


def test_pairs_that_differ_by_a_few_words_are_near_duplicates(fixtures, tmp_path):
    rejects = []
    rows = list(api.iter_rows(fixtures / "filters" / "near_dup_pairs.jsonl", "alpaca", filters=[NearDupFilter(0.7)], rejects=rejects))
    assert [r["id"] for r in rows] == ["n1", "n3", "n4", "n6"]
    assert [(r["id"], r["reason"]) for r in rejects] == [("n2", "near_duplicate_of:n1"), ("n5", "near_duplicate_of:n4")]


def test_pairs_below_the_threshold_are_kept(fixtures):
    # n1/n2 share ~86% of their 3-shingles, n4/n5 ~74%: a strict threshold keeps every row
    result = _run(fixtures, 0.95)
    assert [r["id"] for r in result.rows] == ["n1", "n2", "n3", "n4", "n5", "n6"]
    result = _run(fixtures, 0.8)
    assert [r["id"] for r in result.rows] == ["n1", "n3", "n4", "n5", "n6"]
    assert result.tally.by_reason == {"near_duplicate_of": 1}


def test_deterministic_across_instances():
    rows = [row(str(i), instruction=f"질문 {i % 3}번입니다", response="같은 긴 답변이 여기에 있습니다 " * 3) for i in range(6)]
    first = NearDupFilter(0.8).apply([dict(r) for r in rows])
    second = NearDupFilter(0.8).apply([dict(r) for r in rows])
    assert first == second == [None, None, None, "near_duplicate_of:0", "near_duplicate_of:1", "near_duplicate_of:2"]


def test_shingles_ignore_spacing_punctuation_and_case():
    assert shingles("서울 은, 어디?", 3) == shingles("서울은어디", 3) == {s.encode() for s in ("서울은", "울은어", "은어디")}
    assert shingles("!!!", 3) == set()
    assert shingles("AB", 3) == {b"ab"}


def test_rows_without_letters_are_kept():
    assert NearDupFilter(0.5).apply([row("1", instruction="?", response="..."), row("2", instruction="!", response="...")]) == [None, None]


def test_settings_and_bad_values():
    flt = NearDupFilter(0.7, shingle=4, num_perm=64, fields="instruction,response")
    settings = flt.settings()
    assert {k: settings[k] for k in ("threshold", "shingle", "num_perm", "fields", "seed")} == {
        "threshold": 0.7, "shingle": 4, "num_perm": 64, "fields": ["instruction", "response"], "seed": 1,
    }
    with pytest.raises(ConfigError, match="threshold"):
        NearDupFilter(1.5)
    with pytest.raises(ConfigError, match="fields"):
        NearDupFilter(0.8, fields="answer")
