import json

import pytest

from kodolly import api
from kodolly.errors import ConfigError
from kodolly.filters import build_filters
from kodolly.filters.dedup import DedupFilter, parse_key

from kodolly.rows import make_row

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine


def row(id="r", instruction="질문입니다", response="답입니다", **fields):
    """A row as the pipeline hands it to filters (already normalised)."""
    return make_row(instruction=instruction, response=response, source="test", id=id, **fields)


def _dedup_only():
    return build_filters({"content": False, "dedup": True, "split": False})


def test_nfc_nfd_whitespace_and_zero_width_variants_are_duplicates(fixtures):
    result = api.convert(fixtures / "filters" / "dedup_variants.jsonl", "alpaca", filters=_dedup_only())
    assert [r["id"] for r in result.rows] == ["v1", "v6", "v7", "v8"]
    assert result.tally.sources["alpaca"].rejected == {"duplicate_of": 5}


def test_each_duplicate_names_the_first_row(fixtures, tmp_path):
    out = tmp_path / "out.jsonl"
    api.convert(fixtures / "filters" / "dedup_variants.jsonl", "alpaca", out, filters=_dedup_only())
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text("utf-8").splitlines()]
    assert [(r["id"], r["reason"], r["line"]) for r in rejects] == [
        ("v2", "duplicate_of:v1", 2),
        ("v3", "duplicate_of:v1", 3),
        ("v4", "duplicate_of:v1", 4),
        ("v5", "duplicate_of:v1", 5),
        ("v9", "duplicate_of:v1", 9),
    ]


def test_dedup_across_two_sources_keeps_the_first_input(fixtures):
    from kodolly import InputGroup

    result = api.convert(
        fixtures / "filters" / "dedup_variants.jsonl", "alpaca", filters=_dedup_only(),
        groups=[InputGroup([fixtures / "filters" / "dedup_second_source.jsonl"], "dolly")],
    )
    assert [(r["source"], r["id"]) for r in result.rows] == [
        ("alpaca", "v1"), ("alpaca", "v6"), ("alpaca", "v7"), ("alpaca", "v8"), ("dolly", "d3"),
    ]
    assert result.tally.sources["dolly"].read == 3
    assert result.tally.sources["dolly"].rejected == {"duplicate_of": 2}
    assert result.tally.balanced


def test_field_separator_keeps_shifted_boundaries_apart():
    flt = DedupFilter()
    rows = [row("1", instruction="ab", context="c"), row("2", instruction="a", context="bc"), row("3", instruction="ab", context="c")]
    assert flt.apply(rows) == [None, None, "duplicate_of:1"]


def test_key_fields_are_selectable():
    rows = [row("1", instruction="질문", response="답 하나"), row("2", instruction="질문", response="답 둘")]
    assert DedupFilter().apply(rows) == [None, None]
    assert DedupFilter(key="instruction").apply(rows) == [None, "duplicate_of:1"]
    assert DedupFilter(key=["instruction", "domain"]).settings()["key"] == ["instruction", "domain"]


def test_state_spans_batches():
    flt = DedupFilter()
    assert flt.apply([row("1")]) == [None]
    assert flt.apply([row("2"), row("3", response="다른 답")]) == ["duplicate_of:1", None]
    assert flt.distinct == 2


def test_unknown_key_field_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown field 'answer'"):
        parse_key("instruction,answer")
